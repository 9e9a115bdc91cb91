"""`flowgram check` on broken flows: each mistake is reported where it is, with a hint.

Every file under tests/broken_flows/ holds one kind of mistake (many_errors.yaml
holds fifteen). The tests state the exact line a product person sees:
`file:line:column: error: message (hint: ...)`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.app import check
from engine.config import Settings, load_settings
from engine.errors import Problem

ROOT = Path(__file__).resolve().parent.parent
BROKEN = Path("tests/broken_flows")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "config.yaml", environ={})


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def problems_of(settings: Settings, *paths: Path) -> list[Problem]:
    _, problems = check(settings, list(paths))
    return problems


def flowgram(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


# (the file with the mistake, line:column, message, hint)
ONE_MISTAKE = [
    pytest.param(
        "yaml_tab.yaml",
        "6:1",
        "YAML syntax: a tab character; YAML indents with spaces only",
        "replace the tab with spaces",
        id="tab",
    ),
    pytest.param(
        "yaml_unclosed_quote.yaml",
        "6:10",
        "YAML syntax: this quoted text is never closed",
        'end it with the same quote it starts with; inside double quotes write \\" for a quote',
        id="unclosed-quote",
    ),
    pytest.param(
        "yaml_bad_indent.yaml",
        "7:7",
        "YAML syntax: wrong indentation: this line does not line up with the lines above it",
        "keys of one mapping, and items of one list, start in the same column",
        id="bad-indentation",
    ),
    pytest.param(
        "duplicate_key.yaml",
        "8:5",
        "duplicate key 'say': it already appears on line 6",
        "each key may appear once in a mapping; merge the two entries",
        id="duplicate-key",
    ),
    pytest.param(
        "unknown_key.yaml",
        "6:5",
        "unknown key 'sya' in state 'hello'",
        "did you mean 'say'?",
        id="unknown-key",
    ),
    pytest.param(
        "on_misspelled.yaml",
        "9:5",
        "unknown key 'onn' in state 'menu'",
        "did you mean 'on'?",
        id="on-misspelled",
    ),
    pytest.param(
        "wrong_type_columns.yaml",
        "10:14",
        "'columns' in state 'menu' must be a whole number from 1 to 8; got 'two'",
        None,
        id="columns-not-a-number",
    ),
    pytest.param(
        "wrong_type_buttons.yaml",
        "7:14",
        "'buttons' in state 'menu' must be a list of buttons; got 'yes'",
        'a list has one item per line, e.g. - {label: "Yes", value: yes}',
        id="buttons-not-a-list",
    ),
    pytest.param(
        "unknown_state.yaml",
        "132:13",
        "there is no state named 'ask_phon' to go to",
        "did you mean 'ask_phone'?",
        id="unknown-state",
    ),
    pytest.param(
        "unreached_state.yaml",
        "8:3",
        "state 'goodbye' is never reached: no transition goes to it",
        "add a transition with 'go: goodbye', or delete the state",
        id="unreached-state",
    ),
    pytest.param(
        "dead_end.yaml",
        "9:3",
        "state 'goodbye' has no way out: no transition under 'on', and it is not final",
        "add a transition under 'on', or mark it 'final: true'",
        id="no-way-out",
    ),
    pytest.param(
        "unknown_endpoint/feedback.yaml",
        "171:15",
        "there is no backend endpoint named 'get_usr'",
        "did you mean 'get_user'?",
        id="unknown-endpoint",
    ),
    pytest.param(
        "unknown_action/feedback.yaml",
        "252:14",
        "there is no custom action named 'priorty'",
        "did you mean 'priority'?",
        id="unknown-action",
    ),
    pytest.param(
        "missing_translation.yaml",
        "6:5",
        "'say' in state 'hello' has no 'ru' text; this flow speaks uz, ru",
        "add 'ru: ...' beside 'uz'",
        id="missing-translation",
    ),
    pytest.param(
        "unknown_variable.yaml",
        "22:9",
        "'ful_name' is used here, but nothing sets it",
        "did you mean 'full_name'?",
        id="unknown-variable",
    ),
    pytest.param(
        "duplicate_button.yaml",
        "9:32",
        "two buttons of state 'menu' share the value 'yes'",
        "the other one is on line 8; give each button its own value",
        id="duplicate-button-value",
    ),
    pytest.param(
        "long_callback.yaml",
        "9:16",
        "button value 'complaint_about_the_c...' is 69 bytes; Telegram allows at most 64",
        "use a short value; the label may be long",
        id="callback-data-too-long",
    ),
    pytest.param(
        "unknown_text_ref.yaml",
        "8:10",
        "'@welcom' refers to a shared text that does not exist: no 'welcom' under 'texts'",
        "did you mean '@welcome'?",
        id="unknown-shared-text",
    ),
    pytest.param(
        "bad_regex.yaml",
        "8:16",
        "pattern '^(\\d{14}$' is not a valid regular expression: "
        "missing ), unterminated subpattern at character 2",
        "check the brackets; e.g. '^\\d{14}$' is exactly 14 digits",
        id="invalid-regex",
    ),
    pytest.param(
        "template_syntax.yaml",
        "11:10",
        "template 'Thanks, {{ name }!' is not valid: unexpected '}'",
        "variables look like '{{ full_name }}', blocks like '{% if x %}...{% endif %}'",
        id="template-syntax",
    ),
    pytest.param(
        "unknown_subflow.yaml",
        "6:11",
        "there is no flow named 'registraton' to run as a sub-flow",
        "flows checked with this one: parent; check the sub-flow's file together with this one",
        id="unknown-subflow",
    ),
    pytest.param(
        "unknown_button.yaml",
        "13:17",
        "no button of state 'menu' has the value 'complain'",
        "did you mean 'complaint'?",
        id="unknown-button",
    ),
    pytest.param(
        "empty.yaml",
        "1:1",
        "the file is empty; a flow file is a mapping with 'flow', 'languages', 'start' and "
        "'states'",
        "start from a copy of an existing flow: "
        "flow: name, languages: [uz, ru], start: first_state, states: ...",
        id="empty-file",
    ),
    pytest.param(
        "top_level_list.yaml",
        "1:1",
        "the file holds a list; a flow file is a mapping with 'flow', 'languages', 'start' and "
        "'states'",
        "start from a copy of an existing flow: "
        "flow: name, languages: [uz, ru], start: first_state, states: ...",
        id="list-at-top-level",
    ),
    pytest.param(
        "empty_states.yaml",
        "4:8",
        "'states' is empty; expected a mapping of state names to states",
        None,
        id="empty-states",
    ),
    pytest.param(
        "state_not_mapping.yaml",
        "5:10",
        "state 'hello' must be a mapping of keys such as say, buttons and on; got 'Hello!'",
        'write it like {say: "Hello", on: [{go: next_state}]}',
        id="state-not-a-mapping",
    ),
]


@pytest.mark.parametrize(("name", "position", "message", "hint"), ONE_MISTAKE)
def test_one_mistake_is_reported_once_at_its_place(
    settings: Settings, name: str, position: str, message: str, hint: str | None
) -> None:
    path = BROKEN / name
    # A broken copy of feedback.yaml is checked in its folder, beside its sub-flow.
    [problem] = problems_of(settings, path if path.parent == BROKEN else path.parent)
    assert f"{problem.file}:{problem.line}:{problem.column}" == f"{path}:{position}"
    assert problem.message == message
    assert problem.hint == hint


def test_the_command_prints_file_line_column_and_exits_1() -> None:
    result = flowgram("check", "tests/broken_flows/unknown_key.yaml")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "tests/broken_flows/unknown_key.yaml:6:5: error: unknown key 'sya' in state 'hello' "
        "(hint: did you mean 'say'?)"
    ]
    assert "1 flow(s) checked, 1 error(s)" in result.stderr


def test_the_command_reports_a_yaml_syntax_error_and_exits_1() -> None:
    result = flowgram("check", "tests/broken_flows/yaml_tab.yaml")
    assert result.returncode == 1
    assert result.stdout.startswith("tests/broken_flows/yaml_tab.yaml:6:1: error: YAML syntax:")


def test_the_command_checks_a_folder_with_its_sub_flow() -> None:
    result = flowgram("check", "tests/broken_flows/unknown_endpoint")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "tests/broken_flows/unknown_endpoint/feedback.yaml:171:15: error: there is no backend "
        "endpoint named 'get_usr' (hint: did you mean 'get_user'?)"
    ]


@pytest.mark.parametrize("args", [["check"], ["check", "flows"], ["check", "flows/"]])
def test_the_real_flows_are_clean(args: list[str]) -> None:
    result = flowgram(*args)
    assert result.returncode == 0, result.stdout
    assert result.stdout == ""
    assert result.stderr.strip() == "2 flow(s) checked, no errors"


MANY = [
    ("13:5", "unknown key 'sya' in state 'welcome'"),
    ("16:10", "'label' of button 2 in state 'welcome' has no 'ru' text; this flow speaks en, ru"),
    ("16:39", "two buttons of state 'welcome' share the value 'start'"),
    ("17:14", "'columns' in state 'welcome' must be a whole number from 1 to 8; got 'two'"),
    ("21:17", "no button of state 'welcome' has the value 'later'"),
    (
        "27:16",
        "pattern '[a-z' is not a valid regular expression: unterminated character set "
        "at character 1",
    ),
    ("30:13", "there is no state named 'ask_phon' to go to"),
    (
        "33:10",
        "'@phone_prompt' refers to a shared text that does not exist: "
        "no 'phone_prompt' under 'texts'",
    ),
    ("35:15", "there is no backend endpoint named 'get_usr'"),
    ("36:14", "there is no custom action named 'priorty'"),
    ("38:15", "condition 'full_name and' is not valid: unexpected 'end of template'"),
    ("45:5", "duplicate key 'final': it already appears on line 44"),
    ("47:3", "state 'goodbye' has no way out: no transition under 'on', and it is not final"),
    ("48:10", "'ful_name' is used here, but nothing sets it"),
    ("50:3", "state 'orphan' is never reached: no transition goes to it"),
]


def test_a_file_with_many_mistakes_reports_every_one(settings: Settings) -> None:
    problems = problems_of(settings, BROKEN / "many_errors.yaml")
    assert [(f"{p.line}:{p.column}", p.message) for p in problems] == MANY


def test_the_command_prints_every_mistake_of_a_file() -> None:
    result = flowgram("check", "tests/broken_flows/many_errors.yaml")
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == len(MANY)
    assert "1 flow(s) checked, 15 error(s)" in result.stderr


def test_a_mistake_in_a_sub_flow_does_not_break_the_flow_that_runs_it(
    settings: Settings, tmp_path: Path
) -> None:
    shutil.copy(ROOT / "flows/feedback.yaml", tmp_path / "feedback.yaml")
    text = (ROOT / "flows/registration.yaml").read_text(encoding="utf-8")
    (tmp_path / "registration.yaml").write_text(
        text.replace('    say: "@ask_name"', '    sya: "@ask_name"'), encoding="utf-8"
    )
    problems = problems_of(settings, tmp_path)
    assert [(p.file, p.message) for p in problems] == [
        (str(tmp_path / "registration.yaml"), "unknown key 'sya' in state 'ask_name'")
    ]


ODD_FILES = {
    "comment only": "# nothing here yet\n",
    "a sentence": "just a sentence\n",
    "two documents": "flow: a\n---\nflow: b\n",
    "recursive alias": "flow: &a [*a]\n",
    "unknown tag": "flow: !!python/name:os.system\n",
    "bad integer tag": "flow: a\nversion: !!int one\n",
    "only a name": "flow: a\n",
    "state name is a number": "flow: a\nlanguages: [en]\nstart: a\nstates:\n  1: {final: true}\n",
    "empty state": "flow: a\nlanguages: [en]\nstart: a\nstates:\n  a:\n",
    "on is a mapping": "flow: a\nlanguages: [en]\nstart: a\nstates:\n  a: {on: {go: a}}\n",
    "list of words as state": "flow: a\nlanguages: [en]\nstart: a\nstates:\n  a: [x]\n",
    "texts is a number": "flow: a\nlanguages: [en]\nstart: a\ntexts: 3\n"
    "states:\n  a: {say: '@x', final: true}\n",
    "bad language list": "flow: a\nlanguages: [en, 5]\nstart: a\nstates:\n  a: {final: true}\n",
    "complex key": "flow: a\n? [a, b]\n: c\n",
    "not utf-8": "flow: \udcff\n",
}


@pytest.mark.parametrize("text", ODD_FILES.values(), ids=ODD_FILES.keys())
def test_odd_files_get_problems_not_a_crash(settings: Settings, tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    problems = problems_of(settings, path)
    assert problems
    assert all(p.line >= 1 and p.column >= 1 and p.message for p in problems)


def test_a_broken_node_hides_only_the_mistakes_that_follow_from_it(settings: Settings) -> None:
    # `onn:` is reported; 'menu' is not also said to have no way out, nor 'done' unreached.
    problems = problems_of(settings, BROKEN / "on_misspelled.yaml")
    assert [p.message for p in problems] == ["unknown key 'onn' in state 'menu'"]


def test_a_question_whose_every_next_step_is_guarded_is_reported(settings: Settings) -> None:
    problems = problems_of(settings, BROKEN / "answer_goes_nowhere.yaml")

    assert [str(p) for p in problems] == [
        "tests/broken_flows/answer_goes_nowhere.yaml:5:3: error: state 'ask' can stop with "
        "nowhere to go: every automatic transition has 'when' (hint: add a last transition "
        "without 'when')"
    ]
