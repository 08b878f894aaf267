"""IEMOCAP preparation on the synthetic tree: counts, merges, filters, ids, paths, errors."""

import json
import logging
import os
import shutil

import pytest

from conftest import tree_hash
from data_prep import iemocap_prepare as prep
from data_prep.synthetic.iemocap import SIZES

SPEC = SIZES["tiny"]["labels"]  # turns per speaker and label in the tiny corpus
N_SPEAKERS = 10


def _prepare(corpus, out, **kwargs):
    with open(prep.prepare_iemocap(corpus, str(out), **kwargs)) as f:
        return json.load(f)


def test_counts_merge_and_dropped_labels(iemocap, tmp_path):
    merged = _prepare(iemocap, tmp_path / "m")
    expected = N_SPEAKERS * (SPEC["neu"] + SPEC["hap"] + SPEC["exc"] + SPEC["ang"] + SPEC["sad"])
    assert len(merged) == expected
    assert {t["emo"] for t in merged.values()} == {"ang", "hap", "neu", "sad"}
    from_exc = [t for t in merged.values() if t["emo_original"] == "exc"]
    assert len(from_exc) == N_SPEAKERS * SPEC["exc"] and all(t["emo"] == "hap" for t in from_exc)
    assert not {"fru", "xxx", "sur", "oth"} & {t["emo_original"] for t in merged.values()}

    unmerged = _prepare(iemocap, tmp_path / "u", merge={})
    assert len(unmerged) == expected - N_SPEAKERS * SPEC["exc"]
    assert "exc" not in {t["emo_original"] for t in unmerged.values()}


def test_speakers_come_from_the_letter_after_the_last_underscore(iemocap, tmp_path):
    every_label = ("ang", "hap", "neu", "sad", "exc", "fru", "sur", "xxx", "oth", "fea")
    data = _prepare(iemocap, tmp_path, classes=every_label, merge={})
    assert data["Ses03M_impro05a_F000"]["speaker"] == "Ses03F"
    assert data["Ses03M_impro08b_F000"]["speaker"] == "Ses03F"
    for dialog, session in (("Ses03M_impro05a", "Ses03"), ("Ses03M_impro08b", "Ses03"),
                            ("Ses05M_script01_1b", "Ses05")):
        speakers = {t["speaker"] for t in data.values() if t["dialog"] == dialog}
        assert speakers == {session + "F", session + "M"}, dialog
    for turn_id, entry in data.items():
        assert entry["speaker"] == f"Ses0{entry['session']}{turn_id.rsplit('_', 1)[1][0]}"
        assert entry["gender"] == entry["speaker"][-1]
    assert len({t["speaker"] for t in data.values()}) == N_SPEAKERS


def test_filters(iemocap, tmp_path):
    full = _prepare(iemocap, tmp_path / "all")
    impro = _prepare(iemocap, tmp_path / "impro", improvised_only=True)
    assert impro and set(impro) < set(full)
    assert all(t["improvised"] and "_impro" in t["dialog"] for t in impro.values())
    assert len(impro) == sum(t["improvised"] for t in full.values())

    no_trans = [i for i, t in full.items() if t["transcript"] == ""]
    assert len(no_trans) == 2
    dropped = _prepare(iemocap, tmp_path / "dnt", drop_no_transcript=True)
    assert set(full) - set(dropped) == set(no_trans)

    long_ids = {i for i, t in full.items() if t["duration"] > 20.0}
    assert len(long_ids) == len(SIZES["tiny"]["long_sessions"])
    short = _prepare(iemocap, tmp_path / "short", max_duration=20.0)
    assert set(full) - set(short) == long_ids


def test_fields_words_and_relative_paths(iemocap, tmp_path):
    data = _prepare(iemocap, tmp_path)
    entry = data["Ses01F_impro01_F000"]
    assert set(entry) >= {"wav", "duration", "emo", "transcript", "words", "speaker", "gender",
                          "session", "dialog", "improvised"}
    assert entry["wav"] == "{data_root}/Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
    assert entry["words"] == prep.normalize_words(entry["transcript"]) and entry["words"].isupper()
    assert entry["improvised"] is True and entry["session"] == 1


def test_moved_corpus_still_loads(iemocap, tmp_path):
    import speechbrain as sb

    path = prep.prepare_iemocap(iemocap, str(tmp_path / "prep"))
    moved = str(tmp_path / "moved" / "IEMOCAP_full_release")
    shutil.copytree(iemocap, moved)
    dataset = sb.dataio.dataset.DynamicItemDataset.from_json(
        path, replacements={"data_root": moved})
    dataset.add_dynamic_item(sb.dataio.dataio.read_audio, takes="wav", provides="sig")
    dataset.set_output_keys(["id", "wav", "sig"])
    item = dataset[0]
    assert item["wav"].startswith(moved) and item["sig"].numel() > 1000


def test_corpus_is_read_only_to_prep(iemocap, tmp_path):
    before = tree_hash(iemocap)
    _prepare(iemocap, tmp_path / "a", drop_no_transcript=True, max_duration=20.0)
    assert tree_hash(iemocap) == before


def test_skip_when_prepared_with_same_options(iemocap, tmp_path):
    path = prep.prepare_iemocap(iemocap, str(tmp_path))
    mtime = os.stat(path).st_mtime_ns
    prep.prepare_iemocap(iemocap, str(tmp_path))
    assert os.stat(path).st_mtime_ns == mtime
    prep.prepare_iemocap(iemocap, str(tmp_path), improvised_only=True)
    assert all(t["improvised"] for t in json.load(open(path)).values())


# ---- bad input: one clear error naming the path, non-zero exit, nothing written ----

@pytest.fixture
def corpus_copy(iemocap, tmp_path):
    copy = str(tmp_path / "IEMOCAP_full_release")
    shutil.copytree(iemocap, copy)
    return copy


def _cli_fails(capsys, data_folder, out, match):
    rc = prep.main(["--data_folder", data_folder, "--output_folder", str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith("error:") and match in err, err
    assert not os.path.exists(os.path.join(str(out), "data.json"))
    return err


def test_wrong_data_folder(tmp_path, capsys):
    _cli_fails(capsys, str(tmp_path / "nowhere"), tmp_path / "out", str(tmp_path / "nowhere"))


def test_missing_session(corpus_copy, tmp_path, capsys):
    shutil.rmtree(os.path.join(corpus_copy, "Session3"))
    _cli_fails(capsys, corpus_copy, tmp_path / "out", os.path.join(corpus_copy, "Session3"))


def test_missing_wav(corpus_copy, tmp_path, capsys):
    wav = os.path.join(corpus_copy, "Session2/sentences/wav/Ses02F_impro01/Ses02F_impro01_F000.wav")
    os.remove(wav)
    _cli_fails(capsys, corpus_copy, tmp_path / "out", f"missing wav {wav}")


def test_unreadable_wav(corpus_copy, tmp_path, capsys):
    wav = os.path.join(corpus_copy, "Session4/sentences/wav/Ses04F_impro01/Ses04F_impro01_F000.wav")
    with open(wav, "wb") as f:
        f.write(b"not a wav file at all")
    _cli_fails(capsys, corpus_copy, tmp_path / "out", f"unreadable wav {wav}")


def test_malformed_label_line(corpus_copy, tmp_path, capsys):
    path = os.path.join(corpus_copy, "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt")
    lines = open(path).read().split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith("["))
    lines[i] = lines[i].replace("\t", " ")  # spaces instead of tabs
    open(path, "w").write("\n".join(lines))
    _cli_fails(capsys, corpus_copy, tmp_path / "out", f"{path}:{i + 1}: malformed label line")


def test_empty_corpus(tmp_path, capsys):
    root = tmp_path / "IEMOCAP_full_release"
    for s in range(1, 6):
        for sub in ("dialog/EmoEvaluation", "dialog/transcriptions", "sentences/wav"):
            os.makedirs(root / f"Session{s}" / sub)
    _cli_fails(capsys, str(root), tmp_path / "out", "no labelled turns")


def test_full_release_count_check(caplog):
    caplog.set_level(logging.INFO)
    args = (("ang", "hap", "neu", "sad"), {"exc": "hap"}, False, False, None)
    prep._check_known_total(10039, 5531, *args)
    assert "as expected" in caplog.text
    prep._check_known_total(10039, 5400, *args)
    assert "5400 turns, but the full release gives 5531" in caplog.text
    caplog.clear()
    prep._check_known_total(10039, 2200, ("ang", "hap", "neu", "sad"), {}, True, False, None)
    assert "gives 2280" in caplog.text
    caplog.clear()
    prep._check_known_total(60, 50, *args)  # not the full release: no check
    assert caplog.text == ""


def test_improvised_with_a_merge_warns_that_the_standard_set_merges_none(iemocap, tmp_path,
                                                                        caplog):
    with caplog.at_level(logging.WARNING):
        prep.prepare_iemocap(iemocap, str(tmp_path / "a"), merge={"exc": "hap"},
                             improvised_only=True)
    assert "the standard improvised set" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        prep.prepare_iemocap(iemocap, str(tmp_path / "b"), merge={}, improvised_only=True)
    assert "the standard improvised set" not in caplog.text


def test_cli_help_shows_that_excited_is_merged_by_default(capsys):
    with pytest.raises(SystemExit):
        prep.main(["--help"])
    assert "(default: exc:hap)" in " ".join(capsys.readouterr().out.split())
