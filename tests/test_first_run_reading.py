"""A first run's reading of fixture files (seedkit.seed.load, seedkit.seed.parallel): what the
shortcuts of a one-shot process change is where the work is done, never what is read.

- In a one-shot process (the command line), rows read with the collector paused go to its permanent
  generation (``gc.freeze``): later collections do not walk them again. A library caller's collector
  is left as it was.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from seedkit.seed import load, yaml_events

ROWS = "table: t\nrows:\n" + "".join(f"- {{id: {i}, name: n{i}, r: !ref {{table: a, x: {i}}}}}\n" for i in range(300))


def _tracked_ids() -> set[int]:
    return {id(o) for g in range(3) for o in gc.get_objects(generation=g)}


@pytest.mark.parametrize("one_shot", [True, False])
def test_rows_read_by_a_one_shot_process_are_not_walked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              one_shot: bool) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(ROWS, encoding="utf-8")
    monkeypatch.setattr(yaml_events, "ONE_SHOT", one_shot)
    frozen = gc.get_freeze_count()
    try:
        fixtures = load.load_file(path, variables={})
        rows = fixtures[0].rows
        assert rows is not None and len(rows) == 300
        tracked = _tracked_ids()
        walked = sum(id(r.values) in tracked for r in rows)
        if one_shot:  # in the permanent generation: no collection walks them
            assert walked == 0 and gc.get_freeze_count() > frozen
        else:  # a library caller's collector is left alone: its objects stay collectable
            assert walked == len(rows) and gc.get_freeze_count() == frozen
    finally:
        if one_shot:
            gc.unfreeze()
