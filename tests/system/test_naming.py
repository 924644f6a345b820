"""One naming rule for tenants, users, connectors and templates, checked where
a name enters (keys create, apply), and apply's walk over symbolic links."""

import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import BIN, EXAMPLES, run_cli

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


# ---- symbolic links ----

def one_connector(tmp_path):
    d = tmp_path / "defs"
    d.mkdir()
    shutil.copy(os.path.join(EXAMPLES, "connectors", "crm.yaml"), d / "crm.yaml")
    return d


def test_links_to_directories_are_skipped_once_with_a_note(tmp_path, data):
    # Four links to "." beside one connector made 4^8 walks: 27 s and 262,144 errors.
    d = one_connector(tmp_path)
    for name in "abcd":
        os.symlink(".", d / name)
    started = time.monotonic()
    p = run_cli("apply", "-f", str(d), "--dry-run", "--json", data_dir=data, check=False)
    elapsed = time.monotonic() - started
    assert p.returncode == 0, p.stderr
    docs = json.loads(p.stdout)["documents"]
    assert [(x["kind"], x["name"], x["result"]) for x in docs] == [("connector", "crm", "valid")]
    assert p.stderr.count("note:") == 1, p.stderr
    assert (f"{d}/a: note: skipped 4 symbolic links to directories; apply follows no links "
            "to directories (give the directory itself with -f)") in p.stderr
    # One connector; was 27 s.  A bound with far more than 3x headroom for ASan.
    assert elapsed < 10, elapsed


def test_a_path_given_as_a_link_is_followed(tmp_path, data):
    d = one_connector(tmp_path)
    os.symlink(d, tmp_path / "link")
    p = run_cli("apply", "-f", str(tmp_path / "link"), "--dry-run", data_dir=data, check=False)
    assert p.returncode == 0, p.stderr
    assert "connector crm: valid" in p.stdout
    assert "note:" not in p.stderr


def test_links_to_files_are_followed_inside_and_refused_outside(tmp_path, data):
    d = one_connector(tmp_path)
    (d / "shared").mkdir()
    shutil.move(str(d / "crm.yaml"), d / "shared" / "crm.yaml")
    os.symlink("shared/crm.yaml", d / "crm-link.yaml")  # inside: followed
    p = apply(d, data, "--dry-run", "--json")
    assert p.returncode == 1  # the same connector twice, through the link
    assert f"{d}/shared/crm.yaml: connector \"crm\" is also defined in {d}/crm-link.yaml" \
        in p.stderr, p.stderr
    os.unlink(d / "crm-link.yaml")
    outside = tmp_path / "outside.yaml"
    outside.write_text("secret: 1\n")
    os.symlink(outside, d / "leak.yaml")
    p = apply(d, data, "--dry-run")
    assert p.returncode == 1
    assert (f"{d}/leak.yaml: a symbolic link to {outside}, outside {d}: apply reads only files "
            "inside the paths it is given; copy the file in, or name it with -f") in p.stderr
    assert "secret" not in p.stderr
    os.unlink(d / "leak.yaml")
    os.symlink(tmp_path / "nowhere.yaml", d / "dangling.yaml")
    os.symlink(tmp_path / "nowhere", d / "dangling.txt")  # not a definition: ignored
    p = apply(d, data, "--dry-run")
    assert p.returncode == 1
    assert f"{d}/dangling.yaml: a symbolic link to nothing" in p.stderr
    assert "dangling.txt" not in p.stderr


def test_a_directory_loop_without_links_is_refused(tmp_path, data):
    d = one_connector(tmp_path)
    (d / "sub").mkdir()
    script = f'mount --bind "{d}" "{d}/sub" && exec "{BIN}" apply -f "{d}" --dry-run ' \
             f'--data-dir "{data}"'
    try:
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("no unshare")
    if "mount" in p.stderr and "sandgate" not in p.stderr:
        pytest.skip("cannot bind-mount here: " + p.stderr)
    assert p.returncode == 1, p.stdout + p.stderr
    assert (f"{d}/sub: this directory is one of its own parents again (a bind mount?); apply "
            "refuses the loop: give it the inner directory instead") in p.stderr
    assert p.stderr.count("\n") <= 3, p.stderr
