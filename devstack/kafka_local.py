"""A single-node Kafka 3.9 broker in KRaft mode, run from Apache's own jars.

The jars come from Maven Central through deploy/kafka/pom.xml (fetched once, then
cached in deploy/kafka/target/libs). The broker keeps its data under the run folder and
picks free ports, so a second run (or the test suite beside `make run`) does not clash."""
from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

from parley import kafka
from parley.config import REPO_ROOT
from devstack.procs import free_port, port_is_free, say, spawn, stop, wait_until

POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
LIBS = REPO_ROOT / "deploy" / "kafka" / "target" / "libs"

_LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
"""


def kafka_answers(bootstrap: str) -> bool:
    """A broker at `bootstrap` answers a metadata request (any failure: no)."""
    try:
        asyncio.run(kafka.ping(bootstrap, timeout=2))
        return True
    except Exception:
        return False


def _cluster_id() -> str:
    """A random id as Kafka writes them; never starting with '-', which would read as an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def ensure_jars() -> None:
    if LIBS.is_dir() and any(LIBS.glob("kafka_2.13-*.jar")):
        return
    if not shutil.which("mvn") or not shutil.which("java"):
        raise SystemExit("Kafka needs Java 17 and Maven (mvn) to fetch its jars; install them "
                         "(apt-get install openjdk-17-jre-headless maven) or set KAFKA_BOOTSTRAP_SERVERS.")
    say("fetching Apache Kafka jars from Maven Central (first run only)...")
    subprocess.run(["mvn", "-B", "-f", str(POM), "package"], check=True)
    say(f"Kafka jars cached in {LIBS}")


class LocalKafka:
    def __init__(self, run_dir: Path):
        self.dir = run_dir / "kafka"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _ports(self) -> tuple[int, int]:
        """Reuse last run's ports when free (the broker's identity stays put), else new ones."""
        saved = self.dir / "ports.json"
        if saved.exists():
            ports = json.loads(saved.read_text())
            if port_is_free(ports["broker"]) and port_is_free(ports["controller"]):
                return ports["broker"], ports["controller"]
        broker, controller = free_port(), free_port()
        while controller == broker:
            controller = free_port()
        saved.write_text(json.dumps({"broker": broker, "controller": controller}))
        return broker, controller

    def start(self, timeout: float = 90) -> str:
        ensure_jars()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port, controller = self._ports()
        data = self.dir / "data"
        config = self.dir / "server.properties"
        config.write_text("\n".join([
            "process.roles=broker,controller", "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data}",
            "offsets.topic.replication.factor=1", "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0", "num.partitions=1", "auto.create.topics.enable=false",
            "",
        ]))
        (self.dir / "log4j.properties").write_text(_LOG4J.format(log=self.dir / "server.log"))
        # C1 only (-XX:TieredStopAtLevel=1): this broker shares a small machine with the whole
        # stack, and C2 compiling in its first minutes took 13 % of a 2-CPU box (perf,
        # in `make bench`'s 1,000 msg/s step) and doubled the broker's CPU per message at
        # 100 msg/s (4.1-4.6 ms, 2.0 with C1). Once warm, C1's code costs the same here
        # (0.17-0.20 ms a message at 1,000 msg/s either way; docs/performance.md).
        java = ["java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{self.dir / 'log4j.properties'}", "-cp", f"{LIBS}/*"]
        if not (data / "meta.properties").exists():
            formatted = subprocess.run(java + ["kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(config)],
                                       capture_output=True, text=True)
            if formatted.returncode != 0:
                raise RuntimeError(f"formatting Kafka's storage in {data} failed:\n{formatted.stdout}{formatted.stderr}")
        say(f"starting Kafka on {self.bootstrap} (log: {self.dir / 'server.log'})")
        self.proc = spawn(java + ["kafka.Kafka", str(config)], log_path=self.dir / "stdout.log")
        wait_until(f"Kafka broker on {self.bootstrap}", self._answers, timeout=timeout,
                   alive=lambda: self.proc.poll() is None)
        return self.bootstrap

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
        except OSError:
            return False
        return kafka_answers(self.bootstrap)

    def stop(self) -> None:
        if self.proc:
            stop(self.proc, timeout=20)
            self.proc = None
