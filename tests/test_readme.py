"""The README's layout table names every module of the packages it lists, and only files that exist."""

import re

from tests.conftest import ROOT


def layout_rows():
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        if line.startswith("| `"):
            where, what = line.strip("|").split("|", 1)
            yield re.findall(r"`([^`]+)`", where), set(re.findall(r"`([^`]+)`", what))


def test_every_module_of_a_listed_package_is_named_in_its_row():
    missing = []
    for paths, names in layout_rows():
        for folder in (ROOT / p for p in paths if p.endswith("/")):
            for module in folder.glob("*.py"):
                if module.stem != "__init__" and not {module.stem, module.name} & names:
                    missing.append(str(module.relative_to(ROOT)))
    assert not missing, f"README layout table does not mention: {missing}"


def test_every_path_in_the_first_column_exists():
    absent = [p for paths, _ in layout_rows() for p in paths if p != "media/" and p != "var/"]
    absent = [p for p in absent if not (ROOT / p).exists()]
    assert not absent, f"README layout table lists paths that are not in the tree: {absent}"
