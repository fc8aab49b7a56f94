"""RELIABILITY.md and the reliability tests stay in step: every test it names exists, every reliability
test is named there, and the README links it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def reliability_tests() -> set[str]:
    names = set()
    for path in (REPO / "tests").glob("test_reliability_*.py"):
        if path.name == Path(__file__).name:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def test_every_guarantee_names_a_real_test_and_every_test_is_listed() -> None:
    text = (REPO / "RELIABILITY.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_[a-z0-9_]+)", text))
    tests = reliability_tests()
    assert named - tests == set(), "RELIABILITY.md names tests that do not exist"
    assert tests - named == set(), "reliability tests missing from RELIABILITY.md"
    for file in re.findall(r"`(tests/test_reliability_[a-z_]+\.py)`", text):
        assert (REPO / file).is_file(), file


def test_readme_links_reliability() -> None:
    assert "(RELIABILITY.md)" in (REPO / "README.md").read_text(encoding="utf-8")


# -- docs/seeds.md and docs/python-fixtures.md, statement by statement ------------------------------
# (page, a fragment of the statement, the tests that fail without it). A statement leaves the page or
# its tests are renamed: this list must follow. Speed figures are measured in bench/, not here.
CLAIMS: list[tuple[str, str, list[str]]] = [
    ("docs/seeds.md", "upserts every row by its natural key, in one transaction, under a per-database lock",
     ["test_seed.py::test_second_run_changes_nothing_and_writes_nothing",
      "test_seed.py::test_database_error_midway_rolls_back_everything",
      "test_seed.py::test_two_runs_at_the_same_moment_end_like_one"]),
    ("docs/seeds.md", "rows per batch (memory stays bounded by it)",
     ["test_memory_bounds.py::test_csv_memory_does_not_grow_with_the_file",
      "test_python_fixtures.py::test_a_200k_row_generator_loads_with_bounded_memory"]),
    ("docs/seeds.md", "seconds to wait for another seed run",
     ["test_reliability_secrets.py::test_no_command_prints_the_password",
      "test_reliability_crash.py::test_sigkill_during_seed_run_leaves_postgresql_unchanged"]),
    ("docs/seeds.md", "Files and folders starting with `_` or `.` are ignored",
     ["test_docs_claims.py::test_files_load_in_folder_order_then_by_path_and_underscore_and_dot_names_are_ignored"]),
    ("docs/seeds.md", "on_conflict: update # update (default) | ignore",
     ["test_seed.py::test_on_conflict_ignore_never_updates"]),
    ("docs/seeds.md", "create_only: [password_hash] # set on insert, never overwritten later",
     ["test_seed.py::test_one_edit_updates_exactly_one_row_and_keeps_what_fixtures_do_not_own"]),
    ("docs/seeds.md", "A YAML file may hold several documents",
     ["test_seed.py::test_references_composite_keys_and_rows_only_in_the_database"]),
    ("docs/seeds.md", "a reference is `{\"$ref\": \"roles/admin\"}` or `{\"$ref\": {\"table\": …, …}}`",
     ["test_seed.py::test_csv_and_json_fixtures",
      "test_docs_claims.py::test_reference_forms_and_csv_cells_behave_as_documented"]),
    ("docs/seeds.md", "CSV files hold rows only: the header names the columns, the file name the table, the key is "
                      "the primary key, and an empty cell is NULL",
     ["test_seed.py::test_csv_and_json_fixtures",
      "test_csv_streaming.py::test_a_large_csv_loads_in_batches_and_reruns_unchanged"]),
    ("docs/seeds.md", "JSON text for json columns",
     ["test_docs_claims.py::test_reference_forms_and_csv_cells_behave_as_documented"]),
    ("docs/seeds.md", "not its size or modification time), the name",
     ["test_reliability_fixture_cache.py::test_an_edited_file_is_read_again_even_with_the_same_size_and_time",
      "test_reliability_fixture_cache.py::test_a_run_uses_the_cache_and_sees_an_edit"]),
    ("docs/seeds.md", "the cache never fails a",
     ["test_reliability_fixture_cache.py::test_a_damaged_or_foreign_entry_is_only_a_miss",
      "test_reliability_fixture_cache.py::test_a_folder_that_cannot_be_written_means_no_cache_not_a_failure"]),
    ("docs/seeds.md", "only a file read **without error** is kept",
     ["test_reliability_fixture_cache.py::test_files_with_errors_or_env_values_are_never_kept",
      "test_reliability_fixture_cache.py::test_reading_through_the_cache_gives_what_reading_gives"]),
    ("docs/seeds.md", "What is read does not change: the worker decides no message",
     ["test_reliability_first_run.py::test_reading_on_two_cores_reads_what_the_plain_path_reads",
      "test_reliability_first_run.py::test_a_worker_that_fails_leaves_every_file_to_the_plain_path",
      "test_reliability_first_run.py::test_a_run_reads_the_same_on_one_or_two_cores"]),
    ("docs/seeds.md", "the plan walks no row of a file found without problems again",
     ["test_reliability_early_plan.py::test_the_plan_from_rows_checked_as_they_arrive_is_the_plain_plan",
      "test_reliability_early_plan.py::test_a_run_that_checks_rows_as_they_arrive_says_and_writes_what_the_plain_run_does"]),
    ("docs/seeds.md", "rows staged so far are updated while the rest are still being made",
     ["test_reliability_early_updates.py::test_early_updates_agree_with_late_ones_and_with_comparing_every_row",
      "test_reliability_early_updates.py::test_early_updates_leave_the_fingerprints_the_table_has"]),
    ("docs/seeds.md", "`SEEDKIT_EARLY_UPDATES=0` in the environment turns both off",
     ["test_reliability_early_updates.py::test_seedkit_early_updates_0_leaves_every_update_to_the_end",
      "test_reliability_early_inserts.py::test_seedkit_early_updates_0_inserts_nothing_early"]),
    ("docs/seeds.md", "A large Python fixture going into a table that is empty",
     ["test_reliability_early_inserts.py::test_early_inserts_and_the_single_insert_agree_step_by_step"]),
    ("docs/seeds.md", "`SEEDKIT_PARALLEL_READ=0` in the environment turns it off",
     ["test_reliability_first_run.py::test_two_cores_only_where_they_pay_and_are_safe"]),
    ("docs/seeds.md", "`SEEDKIT_OVERLAP=0` in the environment turns it off",
     ["test_reliability_overlap.py::test_the_switch_turns_it_off"]),
    ("docs/seeds.md", "Reports, errors and exit codes are those of a run on one thread",
     ["test_reliability_overlap.py::test_runs_with_and_without_the_overlap_leave_the_same_database_and_say_the_same",
      "test_reliability_overlap.py::test_real_processes_say_and_leave_the_same"]),
    ("docs/seeds.md", "A cell may hold any amount of text",
     ["test_csv_streaming.py::test_a_cell_larger_than_128_kib_loads"]),
    ("docs/seeds.md", "Numbers with a fraction are read exactly",
     ["test_seed.py::test_values_are_stored_with_their_types"]),
    ("docs/seeds.md", "else its single one-column unique key, else its primary key",
     ["test_docs_claims.py::test_reference_forms_and_csv_cells_behave_as_documented"]),
    ("docs/seeds.md", "splits at the first `/` only",
     ["test_docs_claims.py::test_reference_forms_and_csv_cells_behave_as_documented"]),
    ("docs/seeds.md", "References resolve to rows of this run or rows already in the database",
     ["test_seed.py::test_references_composite_keys_and_rows_only_in_the_database"]),
    ("docs/seeds.md", "otherwise the error says which index to add",
     ["test_seed.py::test_bad_fixtures_fail_located_with_exit_2_and_write_nothing"]),
    ("docs/seeds.md", "unchanged rows are not touched at all — no write, no trigger, no dead tuple",
     ["test_seed.py::test_second_run_changes_nothing_and_writes_nothing"]),
    ("docs/seeds.md", "Columns a row does not list are never modified",
     ["test_seed.py::test_one_edit_updates_exactly_one_row_and_keeps_what_fixtures_do_not_own"]),
    ("docs/seeds.md", "Self-references (employee → manager) and cycles load in one run",
     ["test_seed.py::test_self_reference_and_two_table_cycle_load_in_one_run"]),
    ("docs/seeds.md", "Any other cycle through NOT NULL columns is an error that names the columns",
     ["test_reliability_hostile_input.py::test_malformed_input_is_rejected_cleanly_and_writes_nothing",
      "test_pg_shapes.py::test_a_cycle_without_a_deferrable_or_nullable_key_is_refused_with_a_hint"]),
    ("docs/seeds.md", "A cycle through NOT NULL columns loads when one of its keys is `DEFERRABLE`",
     ["test_pg_shapes.py::test_a_deferrable_key_breaks_a_cycle_of_not_null_columns",
      "test_pg_shapes.py::test_a_late_reference_by_another_key_says_how_to_write_it"]),
    ("docs/seeds.md", "including keys declared only on the partitions of a partitioned table",
     ["test_pg_shapes.py::test_catalog_takes_partition_foreign_keys_as_the_partitioned_tables",
      "test_pg_shapes.py::test_partitioned_tables_load_in_key_order_route_rows_and_rerun_unchanged"]),
    ("docs/seeds.md", "a fixture names the partitioned table, never a partition",
     ["test_pg_shapes.py::test_fixture_naming_a_partition_points_at_the_partitioned_table"]),
    ("docs/seeds.md", "`--check`, `--diff` and `prune` work across partitions",
     ["test_pg_shapes.py::test_partitioned_tables_load_in_key_order_route_rows_and_rerun_unchanged"]),
    ("docs/seeds.md", "is refused before anything is written",
     ["test_pg_shapes.py::test_a_table_with_do_instead_rules_is_refused"]),
    ("docs/seeds.md", "the sequence moves to at least the maximum over every column it feeds, in any table, never back",
     ["test_seed.py::test_explicit_ids_move_sequences_forward_only",
      "test_pg_shapes.py::test_every_sequence_moves_past_explicit_ids_so_inserts_without_id_work",
      "test_pg_shapes.py::test_shared_sequence_counts_rows_of_tables_the_fixtures_do_not_name",
      "test_pg_shapes.py::test_sequences_never_move_backwards",
      "test_pg_shapes.py::test_inheritance_children_share_the_parent_sequence"]),
    ("docs/seeds.md", "references no fixture provides are looked up in the database 500 at a time",
     ["test_refs_at_scale.py::test_references_to_rows_only_in_the_database_are_looked_up_in_batches",
      "test_refs_at_scale.py::test_checking_references_is_linear_in_the_rows",
      "test_refs_at_scale.py::test_nested_references_resolve_in_one_query_per_batch"]),
    ("docs/seeds.md", "never rows inserted by hand",
     ["test_seed.py::test_prune_deletes_only_rows_seedkit_created",
      "test_reliability_prune.py::test_prune_gives_the_same_result_from_every_folder"]),
    ("docs/seeds.md", "prunes the same rows",
     ["test_reliability_prune.py::test_prune_gives_the_same_result_from_every_folder",
      "test_reliability_prune.py::test_a_real_process_prunes_the_same_from_seeds_and_from_another_folder"]),
    ("docs/seeds.md", "are carried over on the first run that prunes",
     ["test_reliability_prune.py::test_a_ledger_written_by_an_earlier_version_is_carried_over"]),
    ("docs/seeds.md", "concurrent runs serialise and end like one run",
     ["test_reliability_concurrency.py::test_concurrent_runs_end_like_one_run"]),
    ("docs/seeds.md", "SQLite itself enforces no declared length, precision or 32-bit range",
     ["test_docs_claims.py::test_sqlite_stores_what_postgresql_would_refuse_as_the_docs_say",
      "test_reliability_hostile_input.py::test_malformed_input_is_rejected_cleanly_and_writes_nothing"]),
    ("docs/seeds.md", "seedkit checks every value against the column's type on SQLite too",
     ["test_reliability_hostile_input.py::test_malformed_input_is_rejected_cleanly_and_writes_nothing",
      "test_seed.py::test_bad_fixtures_fail_located_with_exit_2_and_write_nothing"]),
    ("docs/seeds.md", "A rerun compares what was stored and changes nothing",
     ["test_docs_claims.py::test_sqlite_stores_what_postgresql_would_refuse_as_the_docs_say"]),
    ("docs/seeds.md", "add a `CHECK` constraint to the table (SQLite enforces those; a simple one such as",
     ["test_docs_claims.py::test_a_check_constraint_makes_sqlite_refuse_what_it_would_store"]),
    ("docs/seeds.md", "Every problem is reported with file, line, document, row and column, and nothing is written",
     ["test_seed.py::test_bad_fixtures_fail_located_with_exit_2_and_write_nothing",
      "test_seed.py::test_duplicate_key_across_two_files_names_both",
      "test_reliability_hostile_input.py::test_malformed_input_is_rejected_cleanly_and_writes_nothing"]),
    ("docs/seeds.md", "| `--check` | like `--dry-run`; exit 3 when the database differs from the fixtures |",
     ["test_seed.py::test_dry_run_and_check_write_nothing"]),
    ("docs/seeds.md", "show old → new values of updated rows (first 20)",
     ["test_docs_claims.py::test_diff_shows_the_first_20_changed_values"]),
    ("docs/seeds.md", "| `--only TABLE` | seed only this table", ["test_seed.py::test_only_limits_tables"]),
    ("docs/seeds.md", "| `--yes` | confirm a protected environment or a database it stamped |",
     ["test_reliability_protected.py::test_run_of_a_protected_environment_needs_yes",
      "test_reliability_protected.py::test_a_database_stamped_by_a_protected_environment_refuses_other_environments"]),
    ("docs/seeds.md", "long loads show a progress bar per table on stderr; piped output stays quiet",
     ["test_docs_claims.py::test_a_progress_bar_on_a_terminal_and_quiet_when_piped"]),
    ("docs/seeds.md", "Into an empty table without references rows go straight in with `COPY`",
     ["test_python_fixtures.py::test_empty_table_path_and_merge_path_give_identical_contents"]),
    ("docs/seeds.md", "a 200 MB CSV file loads in the memory of a few batches",
     ["test_memory_bounds.py::test_csv_memory_does_not_grow_with_the_file"]),
    ("docs/seeds.md", "times the file's size",
     ["test_memory_bounds.py::test_json_and_yaml_memory_stays_under_the_stated_multiple_of_the_file",
      "test_memory_bounds.py::test_the_measurement_sees_memory_a_run_holds"]),
    ("docs/seeds.md", "report.inserted, report.updated, report.unchanged, report.changed",
     ["test_plugin_api.py::test_the_api_returns_what_the_cli_prints"]),
    ("docs/python-fixtures.md", "a second run with nothing changed writes nothing",
     ["test_python_fixtures.py::test_same_values_in_a_fresh_database_and_in_another_process"]),
    ("docs/python-fixtures.md", "a seed folder needs no `__init__.py`, file names need not be valid module names",
     ["test_python_fixtures.py::test_py_files_load_without_being_packages_and_their_names_do_not_clash"]),
    ("docs/python-fixtures.md", "resolves the same whether `seedkit run` starts in the project root",
     ["test_reliability_prune.py::test_python_fixtures_import_the_projects_modules_from_every_folder"]),
    ("docs/python-fixtures.md", "the run writes everything or nothing",
     ["test_python_fixtures.py::test_unresolved_ref_in_a_generator_is_located_and_nothing_is_written"]),
    ("docs/python-fixtures.md", "The rows stream into the database in batches and are never all held in memory",
     ["test_python_fixtures.py::test_a_200k_row_generator_loads_with_bounded_memory",
      "test_python_fixtures.py::test_count_fixture_and_generator_fixture_load"]),
    ("docs/python-fixtures.md", "A row that adds or drops a column is a located error",
     ["test_python_fixtures.py::test_a_changed_column_set_is_a_located_error_and_nothing_is_written"]),
    ("docs/python-fixtures.md", 'ref("teams", org="acme", slug="core")',
     ["test_python_fixtures.py::test_ref_inside_python_fixtures_scalar_and_keyword_forms",
      "test_python_fixtures.py::test_ref_with_column_to_a_table_without_foreign_key_loads_the_target_first",
      "test_python_fixtures.py::test_ref_to_a_row_already_in_the_database"]),
    ("docs/python-fixtures.md", "A reference that matches no row is a located error naming the file and row",
     ["test_python_fixtures.py::test_unresolved_ref_in_a_generator_is_located_and_nothing_is_written"]),
    ("docs/python-fixtures.md", "running again, in another process, on another machine, or on a fresh database",
     ["test_python_fixtures.py::test_same_values_in_a_fresh_database_and_in_another_process"]),
    ("docs/python-fixtures.md", "raising `count` from 10 to 20 adds rows 11–20",
     ["test_python_fixtures.py::test_adding_rows_keeps_existing_rows_identical"]),
    ("docs/python-fixtures.md", "adding another fixture — even one that also uses Faker",
     ["test_python_fixtures.py::test_adding_an_unrelated_fixture_reshuffles_nothing"]),
    ("docs/python-fixtures.md", "moving or renaming the file, reordering the folders in `include`",
     ["test_python_fixtures.py::test_reordering_and_moving_files_changes_nothing",
      "test_python_fixtures.py::test_same_values_whichever_environment_runs"]),
    ("docs/python-fixtures.md", "pass `name=\"users\"` to keep the values when you rename the function",
     ["test_docs_claims.py::test_renaming_a_fixture_function_keeps_values_with_name_and_other_seeds_change_them"]),
    ("docs/python-fixtures.md", "seedkit pins a compatible range",
     ["test_docs_claims.py::test_faker_pin_in_the_docs_is_the_projects"]),
    ("docs/python-fixtures.md", "repeat an earlier row's with seedkit's per-row seeding",
     ["test_docs_claims.py::test_the_faker_repeat_rates_in_the_docs_are_measured"]),
    ("docs/python-fixtures.md", "When generated keys do collide, nothing is written and the error says where",
     ["test_python_fixtures.py::test_colliding_generated_keys_are_a_located_error_and_nothing_is_written"]),
    ("docs/python-fixtures.md", "an exception raised by the fixture",
     ["test_python_fixtures.py::test_a_raising_fixture_names_fixture_file_line_and_row",
      "test_python_fixtures.py::test_a_raising_fixture_fails_the_cli_with_exit_2_and_no_traceback"]),
    ("docs/python-fixtures.md", "a function fixture without `count`",
     ["test_python_fixtures.py::test_a_function_fixture_without_count_is_a_located_error"]),
    ("docs/python-fixtures.md", "a repeated key is found by one `GROUP BY` over the staged rows",
     ["test_python_fixtures.py::test_colliding_generated_keys_are_a_located_error_and_nothing_is_written"]),
]


def _normal(text: str) -> str:
    return " ".join(text.split())


def _defined_tests(file: str) -> set[str]:
    tree = ast.parse((REPO / "tests" / file).read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_statement_of_the_seed_docs_names_tests_that_exist() -> None:
    pages = {page: _normal((REPO / page).read_text(encoding="utf-8")) for page, _, _ in CLAIMS}
    missing = [(page, fragment) for page, fragment, _ in CLAIMS if _normal(fragment) not in pages[page]]
    assert missing == [], "statements no longer on their page"
    unknown = [t for _, _, tests in CLAIMS for t in tests
               if t.split("::")[1] not in _defined_tests(t.split("::")[0])]
    assert unknown == [], "tests named for a statement that do not exist"
    assert all(tests for _, _, tests in CLAIMS)
