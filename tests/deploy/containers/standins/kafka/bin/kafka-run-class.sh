#!/bin/bash
# Kafka's launcher, reduced to what the stand-in's other scripts need.
exec java ${KAFKA_HEAP_OPTS:--Xmx256M} -Djava.awt.headless=true \
  ${KAFKA_LOG4J_OPTS:--Dlog4j.configuration=file:/opt/kafka/config/tools-log4j.properties} \
  ${KAFKA_OPTS:-} -cp '/opt/kafka/libs/*' "$@"
