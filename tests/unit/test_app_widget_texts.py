"""The operator app's copy of the widget's default texts (for the settings editor and
its live preview) must stay equal to the registry's."""
import json
import subprocess

from parley.config import REPO_ROOT

from operator_registry.widget_texts import DEFAULT_TEXTS, MULTILINE_KEYS, TEXT_LIMITS

MODULE = REPO_ROOT / "services/gateway/gateway/static/app/widget-texts.js"


def test_the_apps_copy_of_the_widget_texts_equals_the_registrys():
    script = (f"import('{MODULE.as_uri()}').then(m => console.log(JSON.stringify("
              "{texts: m.DEFAULT_TEXTS, limits: m.TEXT_LIMITS, multiline: [...m.MULTILINE_KEYS]})))")
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    copy = json.loads(out.stdout)
    assert copy["texts"] == DEFAULT_TEXTS
    assert copy["limits"] == TEXT_LIMITS
    assert sorted(copy["multiline"]) == sorted(MULTILINE_KEYS)
