"""One naming rule for tenants, users, connectors and templates, checked where
a name enters (keys create, apply)."""

import json
import shutil

import pytest

from conftest import EXAMPLES, run_cli

RULE = "use 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
BAD = [("acme.com", "'.' at position 5 is not allowed"),
       ("../x", "'.' at position 1 is not allowed"),
       ("Acme", "uppercase 'A' at position 1 is not allowed"),
       ("-acme", "'-' may not start a name"),
       ("a" * 64, "it is 64 characters long")]


@pytest.fixture
def data(tmp_path):
    return str(tmp_path / "data")


def keys(data):
    return json.loads(run_cli("keys", "list", "--json", data_dir=data).stdout)


def create(data, tenant="acme", user="ann"):
    return run_cli("keys", "create", "--tenant", tenant, "--user", user, "--role", "explorer",
                   "--json", data_dir=data, check=False)


@pytest.mark.parametrize("flag", ["tenant", "user"])
def test_keys_create_takes_names_by_the_rule(data, flag):
    for good in ("acme", "9-lives_2", "a" * 62, "a" * 63):
        p = create(data, **{flag: good})
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)[flag] == good
    n = len(keys(data))
    for bad, why in BAD:
        p = create(data, **{flag: bad})
        assert p.returncode != 0
        assert p.stderr.strip() == f'sandgate: --{flag} "{bad}": {why}; {RULE}', p.stderr
    assert len(keys(data)) == n  # nothing stored for a refused name


def copy_examples(tmp_path):
    defs = tmp_path / "defs"
    shutil.copytree(EXAMPLES, defs)
    (defs / "sandgate.yaml").unlink(missing_ok=True)
    return defs


def apply(defs, data, *extra):
    return run_cli("apply", "-f", str(defs), *extra, data_dir=data, check=False)


def rename(path, old, new):
    text = path.read_text()
    assert f"name: {old}\n" in text
    path.write_text(text.replace(f"name: {old}\n", f'name: "{new}"\n', 1))
    line = text[:text.index(f"name: {old}\n")].count("\n") + 1
    return line


def test_apply_refuses_a_connector_name_with_its_place(tmp_path, data):
    for bad, why in BAD[:4]:
        defs = copy_examples(tmp_path / bad.replace("/", "_").replace(".", "_"))
        f = defs / "connectors" / "calendar.yaml"
        line = rename(f, "calendar", bad)
        p = apply(defs, data, "--dry-run")
        assert p.returncode == 1
        assert f'{f}:{line}:7: name "{bad}": {why}; {RULE}' in p.stderr, p.stderr
        assert "nothing was applied" in p.stderr


def test_apply_checks_template_names_at_n_minus_1_n_and_n_plus_1(tmp_path, data):
    for n in (62, 63, 64):
        defs = copy_examples(tmp_path / str(n))
        f = defs / "templates" / "onboard-contact" / "template.yaml"
        line = rename(f, "onboard-contact", "t" * n)
        p = apply(defs, data, "--dry-run")
        if n <= 63:
            assert p.returncode == 0, p.stderr
            assert f"template {'t' * n}: valid" in p.stdout
        else:
            assert p.returncode == 1
            assert f'{f}:{line}:7: name "{"t" * n}": it is 64 characters long' in p.stderr


def test_apply_refuses_a_template_named_like_a_path(tmp_path, data):
    defs = copy_examples(tmp_path)
    f = defs / "templates" / "onboard-contact" / "template.yaml"
    line = rename(f, "onboard-contact", "../x")
    p = apply(defs, data, "--dry-run")
    assert p.returncode == 1
    assert f'{f}:{line}:7: name "../x": \'.\' at position 1 is not allowed; {RULE}' in p.stderr
