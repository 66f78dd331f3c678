"""bundles.zipline_patches: the move-commit gives the same tree zipline's copy would."""
from __future__ import annotations

import filecmp

from bundles.zipline_patches import _move_commit, install_fast_commit


class _WorkingDir:  # the two attributes zipline's working_dir._commit uses
    def __init__(self, path, final_path):
        self.path, self._final_path = str(path), str(final_path)


def _tree(tmp_path, name, files):
    root = tmp_path / name
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_move_commit_merges_into_existing_folders(tmp_path):
    work = _tree(tmp_path, "work", {"polygon/2024/daily/a": "A", "polygon/2024/assets-7.sqlite": "S"})
    final = _tree(tmp_path, "final", {"polygon/2024/gapline/ingest_report.json": "R",
                                      "polygon/2023/keep": "old"})
    _move_commit(_WorkingDir(work, final))
    expected = _tree(tmp_path, "expected", {
        "polygon/2024/daily/a": "A", "polygon/2024/assets-7.sqlite": "S",
        "polygon/2024/gapline/ingest_report.json": "R", "polygon/2023/keep": "old"})
    cmp = filecmp.dircmp(final, expected)

    def same(c):
        return not (c.left_only or c.right_only or c.diff_files) and all(same(s) for s in c.subdirs.values())

    assert same(cmp)
    assert not any(p.is_file() for p in work.rglob("*"))  # moved, not copied


def test_install_fast_commit_is_idempotent():
    from zipline.utils.cache import working_dir

    install_fast_commit()
    install_fast_commit()
    assert working_dir._commit is _move_commit
