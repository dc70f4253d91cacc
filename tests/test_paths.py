"""Recorded paths and commands read the same on every machine (checkpoints, cards, docs/runs)."""
from thyroid_studio.engine.io.paths import PROJECT_ROOT, from_project, project_relative, relative_command


def test_paths_beside_the_project_are_recorded_relative_and_found_again():
    beside = PROJECT_ROOT.parent / "no-such-folder-beside-the-project" / "ddti"  # not a link: stays as named
    assert project_relative(beside) == "../no-such-folder-beside-the-project/ddti"
    assert from_project("../no-such-folder-beside-the-project/ddti") == beside.resolve()


def test_a_recorded_command_names_the_program_and_no_absolute_path():
    runs = PROJECT_ROOT.parent / "runs" / "final" / "trfe"
    command = f"__main__.py train --nodules ../shared/data/ddti --out {runs} --report={PROJECT_ROOT / 'r.json'} --lr 1e-3"
    assert relative_command(command) == ("thyroid-studio train --nodules ../shared/data/ddti --out ../runs/final/trfe "
                                         "--report=r.json --lr 1e-3")


def test_words_with_spaces_stay_one_word():
    folder = PROJECT_ROOT / "my frames"
    assert relative_command(f"thyroid-studio segment '{folder}'") == "thyroid-studio segment 'my frames'"
