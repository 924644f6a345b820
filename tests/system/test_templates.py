"""Templates through `sandgate apply`: the manifest, its Lua and its
capabilities are checked together with the catalog, all or nothing."""

import json
import shutil

from conftest import EXAMPLES, run_cli


def copy_examples(tmp_path):
    dst = tmp_path / "defs"
    shutil.copytree(EXAMPLES, dst)
    return dst


def test_example_template_applies_as_two_documents(tmp_path):
    defs = copy_examples(tmp_path)
    out = json.loads(run_cli("apply", "-f", str(defs), "--json",
                             data_dir=str(tmp_path / "data")).stdout)
    kinds = {(d["kind"], d["name"]) for d in out["documents"]}
    assert ("template", "onboard-contact") in kinds
    assert ("template_source", "onboard-contact") in kinds


def test_broken_lua_names_its_line_and_nothing_is_applied(tmp_path):
    defs = copy_examples(tmp_path)
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    lua = defs / "templates" / "onboard-contact" / "main.lua"
    lines = lua.read_text().splitlines()
    at = next(i for i, l in enumerate(lines) if "ctx.log" in l)
    lines[at] = "  ctx.log(\"created contact \" .. )"
    lua.write_text("\n".join(lines) + "\n")
    manifest = defs / "templates" / "onboard-contact" / "template.yaml"
    manifest.write_text(manifest.read_text().replace('"mail.send"', '"mail.sned"'))
    p = run_cli("apply", "-f", str(defs), data_dir=data, check=False)
    assert p.returncode != 0
    assert f"main.lua:{at + 1}:" in p.stderr, p.stderr
    assert 'the catalog has no operation "mail.sned" (did you mean "mail.send"?)' in p.stderr
    assert "nothing was applied" in p.stderr


def test_missing_main_lua_is_reported(tmp_path):
    defs = copy_examples(tmp_path)
    (defs / "templates" / "onboard-contact" / "main.lua").unlink()
    p = run_cli("apply", "-f", str(defs), data_dir=str(tmp_path / "data"), check=False)
    assert p.returncode != 0
    assert "main.lua is missing: put it next to template.yaml" in p.stderr
