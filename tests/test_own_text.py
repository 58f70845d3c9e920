"""A person's own text: every character as written, fine-tuning on a new text, long runs that survive a
time budget and a scheduler's SIGTERM, generation that streams, and no input that loses a run."""
import errno
import os
import re
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from conftest import Piped, read_until, running
from scratchrnn import cli
from scratchrnn.checkpoint import load_checkpoint, save_checkpoint
from scratchrnn.cmdline import EXIT_ERROR, EXIT_PIPE_CLOSED
from scratchrnn.data import Vocab, char_vocab, code_points, load_corpus, normalize
from scratchrnn.errors import DataError

POEM = ("Tyger Tyger, burning bright,\n\tIn the forests of the night;\nWhat immortal hand or eye,\n"
        "    Could frame thy fearful symmetry?\n\n")
VIETNAMESE = "Thời gian là vàng bạc. Đi đâu cũng nhớ về nhà.\n"
TURKISH = "Çocuk ağaçta, ışık şu an güzel.\n"
JAPANESE = "時は金なり。旅人は言った、時間は川のように流れる。\n"
SMALL = ["--hidden", "16", "--layers", "1", "--batch-size", "4", "--num-steps", "8", "--device", "cpu",
         "--log-every", "1", "--val-fraction", "0"]


def scratchrnn(*args, **kw):
    return subprocess.run([sys.executable, "-m", "scratchrnn", *args], capture_output=True, text=True, timeout=600,
                          **kw)


def one_line_error(r, *needles):
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


def write(path, text, encoding="utf-8", newline=None):
    with open(path, "w", encoding=encoding, newline=newline) as f:
        f.write(text)
    return path


# ---------------------------------------------------------------------------------------------
# Text in
# ---------------------------------------------------------------------------------------------

def test_raw_keeps_every_character_as_written(tmp_path):
    text = POEM + VIETNAMESE + TURKISH + JAPANESE
    corpus, vocab = load_corpus(write(tmp_path / "a.txt", text), max_tokens=-1, charset="raw")
    assert "".join(vocab.to_tokens(corpus)) == text
    assert {"\n", "\t", "ờ", "ğ", "ı", "ş", "時", "T", ",", "?"} <= set(vocab.idx_to_token)


def test_nfd_crlf_and_a_byte_order_mark_read_as_the_same_text(tmp_path):
    text = (POEM + VIETNAMESE + TURKISH) * 3
    nfc = load_corpus(write(tmp_path / "nfc.txt", text), max_tokens=-1, charset="raw")
    nfd = load_corpus(write(tmp_path / "nfd.txt", "\ufeff" + unicodedata.normalize("NFD", text), newline="\r\n"),
                      max_tokens=-1, charset="raw")
    assert nfc[1].idx_to_token == nfd[1].idx_to_token and np.array_equal(nfc[0], nfd[0])
    assert normalize("\ufeffa\r\nb\rc") == "a\nb\nc"


def test_the_vocabulary_counted_over_code_points_is_the_books(rng):
    """Most frequent first, ties in order of first appearance: the same as the book's Counter over a list."""
    for _ in range(20):
        text = "".join(rng.choice(list("abcdefgé時\n "), size=int(rng.integers(1, 300))))
        assert char_vocab(code_points(text)).idx_to_token == Vocab(list(text)).idx_to_token


@pytest.mark.parametrize("charset, text, share", [("book", VIETNAMESE * 20, "%"), ("wide", POEM * 20, "%")])
def test_a_charset_that_drops_characters_says_how_many(tmp_path, charset, text, share):
    lines = []
    load_corpus(write(tmp_path / "t.txt", text), max_tokens=-1, charset=charset, report=lines.append)
    assert len(lines) == 1 and f"--charset {charset} drops or changes" in lines[0] and "--charset raw" in lines[0]
    lines.clear()
    load_corpus(write(tmp_path / "t.txt", text), max_tokens=-1, charset="raw", report=lines.append)
    load_corpus(write(tmp_path / "plain.txt", "plain words here " * 50), max_tokens=-1, charset="book",
                report=lines.append)
    assert lines == []                                                  # nothing lost, nothing said


def test_a_text_with_no_letters_for_the_book_charset_names_raw(tmp_path):
    with pytest.raises(DataError, match="no tokens left after preprocessing with --charset book; --charset raw"):
        load_corpus(write(tmp_path / "ja.txt", JAPANESE), charset="book")


def test_a_given_vocabulary_reads_unknown_characters_as_unk(tmp_path):
    _, vocab = load_corpus(write(tmp_path / "a.txt", "abc abc\n"), max_tokens=-1, charset="raw")
    lines = []
    corpus, same = load_corpus(write(tmp_path / "b.txt", "abxxc\n"), max_tokens=-1, charset="raw", vocab=vocab,
                               report=lines.append)
    assert same is vocab and list(corpus) == [vocab["a"], vocab["b"], 0, 0, vocab["c"], vocab["\n"]]
    assert lines == ["note: 2 of the 6 tokens (33.3%) are not in the model's vocabulary of 6 and are read as <unk>"]
    with pytest.raises(DataError, match="none of the 4 tokens of corpus .* is in the model's vocabulary of 6"):
        load_corpus(write(tmp_path / "c.txt", "xyzz"), max_tokens=-1, charset="raw", vocab=vocab)
    with pytest.raises(DataError, match=r"the one token of corpus .* is not in the model's vocabulary of 6 \(it "):
        load_corpus(write(tmp_path / "d.txt", "x"), max_tokens=-1, charset="raw", vocab=vocab)    # ("none of the 1")


# ---------------------------------------------------------------------------------------------
# scratchrnn train and generate on a person's text
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def poem_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("poem")
    corpus = write(folder / "poem.txt", (POEM + VIETNAMESE + JAPANESE) * 12)
    out = folder / "run"
    cli.main(["train", "--corpus", str(corpus), "--out", str(out), "--epochs", "2", *SMALL])
    return corpus, out


def test_train_reads_the_whole_text_with_every_character_by_default(poem_run):
    corpus, out = poem_run
    _, manifest = load_checkpoint(out / "last.npz")
    assert manifest["config"]["max_tokens"] == -1 and manifest["config"]["charset"] == "raw"
    text = normalize(corpus.read_text(encoding="utf-8"))
    assert set(manifest["vocab"][1:]) == set(text)


def test_generate_prints_newlines_and_any_script_as_written(poem_run):
    _, out = poem_run
    r = scratchrnn("generate", "--from", str(out), "--prefix", "時は\n", "--length", "40", "--temperature", "1",
                   "--seed", "3", "--top-k", "5")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("時は\n") and len(r.stdout) == len("時は\n") + 40 + 1      # and the final newline


def test_top_k_of_one_is_greedy(poem_run):
    _, out = poem_run
    greedy = scratchrnn("generate", "--from", str(out), "--prefix", "Ty", "--length", "30")
    top1 = scratchrnn("generate", "--from", str(out), "--prefix", "Ty", "--length", "30", "--temperature", "1.5",
                      "--top-k", "1", "--seed", "0")
    assert greedy.returncode == top1.returncode == 0 and greedy.stdout == top1.stdout


def ends_quietly_when_the_reader_stops(p, timeout):
    p.stdout.close()                                                  # the reader has what it wanted
    return p.wait(timeout=timeout) == EXIT_PIPE_CLOSED and p.stderr.read() == ""


def test_generate_shows_the_first_tokens_before_it_ends_and_stops_quietly_when_the_reader_does(poem_run):
    """A long generation streams: the prefix and the first tokens can be read while it still runs. A reader that
    stops (`| head -c 8`) ends it quietly with 141, as SIGPIPE ends a Unix tool: no traceback."""
    _, out = poem_run
    with running("generate", "--from", str(out), "--prefix", "T", "--length", "1000000", "--temperature", "1",
                 "--seed", "0") as p:
        first = p.stdout.read(8)
        assert p.poll() is None and first.startswith("T")
        assert ends_quietly_when_the_reader_stops(p, 60)


def test_a_ctrl_c_in_a_generation_ends_the_texts_line_first(poem_run):
    """A Ctrl-C in a long generation wrote "interrupted" onto the end of the text's last line ("I took ainterrupted",
    on a terminal where both go): the text's line ends first, and the one line that says so is a line of its own."""
    _, out = poem_run
    with running("generate", "--from", str(out), "--prefix", "T", "--length", "1000000", "--temperature", "1",
                 "--seed", "0") as p:
        assert p.stdout.read(8).startswith("T")
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=60) == 130
        text, said = p.stdout.read(), p.stderr.read()
    assert text.endswith("\n") and said == "interrupted\n"


def test_train_whose_reader_stops_saves_where_it_stands_and_resumes(tmp_path):
    """`scratchrnn train ... | head -1`: each line reaches the pipe as it is written, and the run stops at the line
    after the reader stops, saved there (it ended with only the epochs before), with exit status 141 and one line on
    stderr that says where it was saved (stderr is still the terminal); last.npz resumes."""
    corpus, out = write(tmp_path / "poem.txt", POEM * 20), tmp_path / "run"
    with running("train", "--corpus", str(corpus), "--out", str(out), "--epochs", "50", "--hidden", "8", "--layers",
                 "1", "--batch-size", "4", "--num-steps", "8", "--device", "cpu", "--log-every", "1",
                 env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}) as p:   # as a person's shell
        assert "writing to" in p.stdout.readline()                  # the run's first line, then nothing more read
        p.stdout.close()
        assert p.wait(timeout=300) == EXIT_PIPE_CLOSED
        said = p.stderr.read()
    assert said.startswith("error: cannot write the run's log to standard output (its reader has closed the pipe): "
                           f"saved {out / 'last.npz'} after epoch ") and said.count("\n") == 1, said
    _, manifest = load_checkpoint(out / "last.npz")
    assert 1 <= manifest["epoch"] < 50
    r = scratchrnn("train", "--resume", str(out), "--epochs", str(manifest["epoch"] + 1), "--device", "cpu")
    assert r.returncode == 0, r.stderr


def test_a_text_from_standard_input_or_a_pipe_trains_and_resumes(tmp_path, monkeypatch, capsys):
    """`cat *.txt | scratchrnn train --corpus -` read a file named '-' ("does not exist"), and `--corpus
    <(zcat book.txt.gz)` (a pipe, /dev/fd/63) said "corpus '/proc/PID/fd/pipe:[N]' does not exist": its link was
    resolved, and a pipe was not a file. Both train now; a resume reads standard input again (the same text,
    checked: another is refused naming standard input; from a terminal, or with nothing piped in, a line says how to
    give it again), and a pipe is given again with --corpus."""
    text, other = POEM * 20, VIETNAMESE * 60
    flags = ["--epochs", "1", *SMALL]
    r = scratchrnn("train", "--corpus", "-", "--out", str(tmp_path / "stdin"), *flags, input=text)
    assert r.returncode == 0, r.stderr
    _, manifest = load_checkpoint(tmp_path / "stdin" / "last.npz")
    assert manifest["config"]["corpus"] == ["-"] and set(manifest["vocab"]) == set(text) | {"<unk>"}
    r = scratchrnn("train", "--resume", str(tmp_path / "stdin"), "--epochs", "2", input=text)
    assert r.returncode == 0 and load_checkpoint(tmp_path / "stdin" / "last.npz")[1]["epoch"] == 2, r.stderr
    one_line_error(scratchrnn("train", "--resume", str(tmp_path / "stdin"), "--epochs", "3", input=other),
                   "changed since: standard input (")
    one_line_error(scratchrnn("train", "--resume", str(tmp_path / "stdin"), "--epochs", "3", input=""),   # a script's
                   f"the run's text came from standard input, empty here; pipe the same text in (cat TEXT | "
                   f"scratchrnn train --resume {tmp_path / 'stdin'}) or give its file: --corpus PATH")
    one_line_error(scratchrnn("train", "--corpus", "-", "--out", str(tmp_path / "empty"), *flags, input=" \n"),
                   "corpus standard input (--corpus -) is empty")                 # a new run: no resume to tell of
    one_line_error(scratchrnn("train", "--corpus", "-", "-", "--out", str(tmp_path / "twice"), *flags, input=text),
                   "--corpus - (standard input) is given more than once")
    # standard input a terminal: the run would wait for a text typed in, with nothing said
    monkeypatch.setattr(sys, "stdin", type("Terminal", (), {"isatty": lambda self: True})())
    with pytest.raises(DataError, match="reads the text from standard input, which is a terminal here; pipe"):
        load_corpus("-", max_tokens=-1)
    with pytest.raises(SystemExit):                   # a resume says how to give the run's own text again
        cli.main(["train", "--resume", str(tmp_path / "stdin"), "--epochs", "3"])
    assert capsys.readouterr().err == (f"error: the run's text came from standard input, a terminal here; pipe the "
                                       f"same text in (cat TEXT | scratchrnn train --resume {tmp_path / 'stdin'}) or "
                                       f"give its file: --corpus PATH\n")
    monkeypatch.undo()
    # a pipe (a FIFO, as <(...) gives one): read as a file is, and kept by the name given
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with running("train", "--corpus", str(fifo), "--out", str(tmp_path / "piped"), *flags) as p:
        deadline = time.monotonic() + 300
        while True:                                   # the writer's end opens once the run reads (ENXIO before)
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                assert e.errno == errno.ENXIO and p.poll() is None and time.monotonic() < deadline, p.stderr.read()
                time.sleep(0.05)
        os.set_blocking(writer, True)
        os.write(writer, text.encode())
        os.close(writer)
        assert p.wait(timeout=300) == 0, p.stderr.read()
    _, manifest = load_checkpoint(tmp_path / "piped" / "last.npz")
    assert manifest["config"]["corpus"] == [str(fifo)] and manifest["corpus_digest"] == load_checkpoint(
        tmp_path / "stdin" / "last.npz")[1]["corpus_digest"]


def test_a_text_from_a_pipe_larger_than_the_memory_is_refused_as_it_is_read(tmp_path, monkeypatch, capsys):
    """A pipe's size is not known before it is read: `zcat 20GB.txt.gz | scratchrnn train --corpus -` read it whole,
    then ran out of memory turning it into ids (13 bytes a byte). It is read in pieces now, each checked as a file's
    size is before reading (here against 1.3 MB of memory, so 100 kB of text fits and 200 kB does not), in one
    line with how to cut it, and no --out folder is left behind; standard input and a named pipe alike."""
    import threading
    from scratchrnn import backend, data
    monkeypatch.setattr(data, "STREAM_PIECE", 4096)
    monkeypatch.setattr(backend, "available_memory", lambda device: 13 * 100_000)
    fits, too_long = POEM * (99_000 // len(POEM)), POEM * (200_000 // len(POEM))
    monkeypatch.setattr(sys, "stdin", Piped(fits))
    assert len(load_corpus("-", max_tokens=-1, charset="raw")[0]) == len(fits)
    monkeypatch.setattr(sys, "stdin", Piped(too_long))
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--corpus", "-", "--out", str(tmp_path / "o"), *SMALL])
    said = capsys.readouterr().err
    assert e.value.code == EXIT_ERROR and said.count("\n") == 1 and not (tmp_path / "o").exists(), said
    assert said.startswith("error: reading corpus standard input (--corpus -) (more than 100.0 KiB of text so far, "
                           "13 bytes of memory per byte of it) needs about 1.3 MiB of memory; this machine has "
                           "1.2 MiB available; train on its start: --max-tokens N reads it through once, for its "
                           "vocabulary, and holds only its first N tokens\n"), said
    fifo = tmp_path / "pipe"                                      # --corpus <(zcat book.txt.gz)
    os.mkfifo(fifo)
    for text, fit in ((fits, True), (too_long, False)):
        writer = threading.Thread(target=lambda: (fifo.write_bytes(text.encode()) if fit else
                                                  suppressed_broken_pipe(fifo, text)))
        writer.start()
        if fit:
            assert len(load_corpus(fifo, max_tokens=-1, charset="raw")[0]) == len(text)
        else:
            with pytest.raises(Exception, match=f"reading corpus '{fifo}' \\(more than 100.0 KiB of text so far"):
                load_corpus(fifo, max_tokens=-1)
        writer.join(timeout=60)
        assert not writer.is_alive()


def suppressed_broken_pipe(fifo, text):
    """Write `text` into the pipe `fifo` whose reader may stop before its end."""
    try:
        fifo.write_bytes(text.encode())
    except BrokenPipeError:
        pass


def test_a_large_vocabulary_says_what_it_costs_and_how_to_make_it_smaller(tmp_path, monkeypatch, capsys):
    """A word vocabulary of 77,715 gave a 2 x 256 LSTM 100.3 M parameters, 99% of them its one-hot input's and its
    output layer's, and trained at 117 tokens/s with no word said. A new run whose vocabulary is larger than
    LARGE_VOCABULARY (here 30, for a small text) says how many parameters grow with it, and what --embedding and
    --min-freq 2 would give; where both are taken, nothing; a resume says nothing again."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in rng.zipf(1.5, 4000) % 200]
    text = write(tmp_path / "words.txt", " ".join(words) + "\n")
    monkeypatch.setattr(cli, "LARGE_VOCABULARY", 30)
    flags = ["--corpus", str(text), "--tokens", "word", "--hidden", "16", "--layers", "1", "--batch-size", "4",
             "--num-steps", "8", "--device", "cpu", "--epochs", "1"]

    def notes(*more):
        cli.main(["train", *flags, *more])
        return [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    one_hot = notes("--out", str(tmp_path / "one-hot"))
    V = len(set(words)) + 1                                             # and <unk>
    once = sum(1 for w in set(words) if words.count(w) == 1)
    recurrent = 16 * 64 + 64 + 64                                       # W_hh, b_xh, b_hh (4 gates of 16)
    min_freq = (f"--min-freq 2 reads the {once:,} tokens seen once as <unk> ({once / len(words):.1%} of the text), a "
                f"vocabulary of {V - once:,}")
    assert once and one_hot == [
        f"note: a vocabulary of {V:,} tokens gives the model {V * 64 + V * 16:,} of its "
        f"{V * 64 + recurrent + V * 16 + V:,} parameters (slow to train, quick to overfit); --embedding 256 reads each "
        f"token through 256 learned numbers ({V * 256:,} weights instead of {V * 64:,}) and {min_freq}"]
    assert notes("--out", str(tmp_path / "embedded"), "--embedding", "8") == [
        f"note: a vocabulary of {V:,} tokens gives the model {V * 8 + V * 16:,} of its "
        f"{V * 8 + 8 * 64 + recurrent + V * 16 + V:,} parameters (slow to train, quick to overfit); {min_freq}"]
    assert not [n for n in notes("--out", str(tmp_path / "both"), "--embedding", "8", "--min-freq", "2")
                if "a vocabulary of" in n]
    cli.main(["train", "--resume", str(tmp_path / "one-hot"), "--epochs", "2"])
    assert "a vocabulary of" not in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Runs that go on
# ---------------------------------------------------------------------------------------------

def test_init_from_a_run_trains_on_a_new_text_with_its_weights_and_vocabulary(poem_run, tmp_path):
    """--init-from keeps the run's weights and vocabulary, and adds the new text's tokens the run never saw at the
    vocabulary's end, with fresh weights (a note names them): they were read as <unk>, so a model fine-tuned on a
    text with accents or typographic quotes its first text lacked could never write them."""
    _, parent = poem_run
    new_text = write(tmp_path / "new.txt", (POEM.upper() + TURKISH) * 10)
    r = scratchrnn("train", "--init-from", str(parent), "--corpus", str(new_text), "--out", str(tmp_path / "child"),
                   "--epochs", "1", "--batch-size", "4", "--num-steps", "8", "--device", "cpu", "--val-fraction", "0")
    assert r.returncode == 0, r.stderr
    parent_arrays, parent_manifest = load_checkpoint(parent / "last.npz")
    child_arrays, child_manifest = load_checkpoint(tmp_path / "child" / "last.npz")
    new = [ch for ch in dict.fromkeys(normalize(POEM.upper() + TURKISH)) if ch not in parent_manifest["vocab"]]
    assert new and sorted(child_manifest["vocab"][len(parent_manifest["vocab"]):]) == sorted(new)
    assert child_manifest["vocab"][:len(parent_manifest["vocab"])] == parent_manifest["vocab"]
    notes = [line for line in r.stderr.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {len(new)} tokens new to the model's vocabulary of {len(parent_manifest['vocab'])} are "
                     f"added to it, with fresh weights: " + " ".join(map(repr, child_manifest["vocab"][
                         len(parent_manifest["vocab"]):][:12])) + (" ..." if len(new) > 12 else "")]
    assert "starting from the weights of" in r.stdout
    assert child_manifest["config"]["hidden"] == 16 and child_manifest["config"]["init_from"].endswith(".npz")
    assert child_manifest["config"]["new_tokens"] == len(new)
    assert child_arrays["fc.weight"].shape == (len(child_manifest["vocab"]), 16)
    assert not np.array_equal(child_arrays["fc.weight"][:len(parent_manifest["vocab"])],
                              parent_arrays["fc.weight"])                                   # it trained on
    # and the child resumes with its own vocabulary, not one built from the new text again
    r = scratchrnn("train", "--resume", str(tmp_path / "child"), "--epochs", "2", "--device", "cpu")
    assert r.returncode == 0 and "note:" not in r.stderr, r.stderr
    # the child writes the new characters (a prefix of them needs no <unk>); the parent, which never saw them, and
    # the child, for a character neither text has, refuse them
    g = scratchrnn("generate", "--from", str(tmp_path / "child"), "--prefix", new[0] + new[-1], "--length", "5")
    assert g.returncode == 0 and g.stdout.startswith(new[0] + new[-1]) and g.stderr == "", g.stderr
    one_line_error(scratchrnn("generate", "--from", str(parent), "--prefix", new[0]), "outside the vocabulary")
    one_line_error(scratchrnn("generate", "--from", str(tmp_path / "child"), "--prefix", "\u263a"),
                   "outside the vocabulary")


def test_a_grown_vocabulary_keeps_what_the_run_learned(poem_run):
    """checkpoint.with_new_tokens puts the run's weights in the grown model's arrays along whichever axis is the
    vocabulary's (the input weights' columns, an embedding's rows, the output layer's rows and bias): on the run's
    tokens the grown model gives the run's logits, and the run's state, to the last bit."""
    from scratchrnn.checkpoint import model_from_checkpoint, with_new_tokens
    from scratchrnn.model import model_from_config
    _, parent = poem_run
    arrays, manifest = load_checkpoint(parent / "last.npz")
    for embedding in (None, 5):
        config = {**manifest["config"], "embedding": embedding, "dropout": 0.0}
        run, vocab = model_from_checkpoint(arrays, {**manifest, "config": config}) if embedding is None else (
            model_from_config(config, len(manifest["vocab"])), None)
        grown = model_from_config({**config, "seed": 7}, len(manifest["vocab"]) + 3)
        grown.load_state_dict(with_new_tokens(run.state_dict(), grown.state_dict()))
        X = np.random.default_rng(0).integers(0, len(manifest["vocab"]), size=(6, 2))
        logits, state = run.forward(X, run.begin_state(2))
        logits_grown, state_grown = grown.forward(X, grown.begin_state(2))
        assert np.array_equal(logits_grown[:, :len(manifest["vocab"])], logits)
        assert all(np.array_equal(a, b) for s, t in zip(state, state_grown) for a, b in zip(s, t))
        assert not np.array_equal(grown.state_dict()["fc.weight"][-3:], 0)                # the new rows: fresh


def test_init_from_refuses_a_shape_flag_that_contradicts_the_run(poem_run, tmp_path):
    corpus, parent = poem_run
    one_line_error(scratchrnn("train", "--init-from", str(parent), "--corpus", str(corpus), "--hidden", "32",
                              "--out", str(tmp_path / "x")), "--hidden 32 contradicts the run of --init-from", "16")


@pytest.mark.parametrize("flag, value, theirs", [("--layers", "3", "1"), ("--hidden", "32", "16"),
                                                  ("--cell", "gru", "lstm"), ("--charset", "book", "raw"),
                                                  ("--tokens", "word", "char"), ("--lr", "0.5", "0.003"),
                                                  ("--max-tokens", "500", "-1")])
def test_resume_refuses_a_flag_that_contradicts_the_checkpoint(poem_run, flag, value, theirs):
    _, out = poem_run
    one_line_error(scratchrnn("train", "--resume", str(out), flag, value),
                   f"{flag} {value} contradicts the checkpoint's {theirs}", "--init-from")


def test_resume_of_an_older_checkpoint_refuses_what_it_did_not_do(poem_run, tmp_path):
    """A checkpoint written before the optimisers and dropout has no such keys: it ran SGD without dropout,
    and a resume asking for dropout or Adam contradicts that."""
    _, out = poem_run
    arrays, manifest = load_checkpoint(out / "last.npz")
    for key in ("dropout", "optimizer", "schedule"):
        manifest["config"].pop(key)
    old = tmp_path / "old"
    old.mkdir()
    save_checkpoint(old / "last.npz", {k: v for k, v in arrays.items() if not k.startswith("optimizer.")}, manifest)
    one_line_error(scratchrnn("train", "--resume", str(old), "--dropout", "0.3"),
                   "--dropout 0.3 contradicts the checkpoint's 0.0")
    one_line_error(scratchrnn("train", "--resume", str(old), "--optimizer", "adam"),
                   "--optimizer adam contradicts the checkpoint's sgd")
    assert scratchrnn("train", "--resume", str(old), "--epochs", "3", "--device", "cpu").returncode == 0


def test_resume_refuses_another_corpus_and_another_out(poem_run, tmp_path):
    _, out = poem_run
    other = write(tmp_path / "other.txt", POEM * 30)
    # (--corpus on a resume says where the run's text is now: another text is refused, naming --init-from)
    one_line_error(scratchrnn("train", "--resume", str(out), "--corpus", str(other)), "cannot be resumed on it",
                   f"changed since: {other.resolve()}", f"--init-from {out}")
    one_line_error(scratchrnn("train", "--resume", str(out), "--out", str(tmp_path / "elsewhere")),
                   "a resume writes into the run's folder")
    one_line_error(scratchrnn("train", "--resume", str(out), "--init-from", str(out)), "give one of them")


def test_resume_honours_a_flag_that_agrees_and_the_ones_it_lists(poem_run, tmp_path):
    corpus, out = poem_run
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "last.npz").write_bytes((out / "last.npz").read_bytes())
    r = scratchrnn("train", "--resume", str(copy), "--hidden", "16", "--corpus", str(corpus), "--epochs", "3",
                   "--device", "cpu", "--engine", "reference", "--log-every", "5", "--plot")
    assert r.returncode == 0, r.stderr
    _, manifest = load_checkpoint(copy / "last.npz")
    assert manifest["epoch"] == 3 and (copy / "perplexity.png").exists()


def test_save_every_steps_writes_the_checkpoint_inside_the_epoch(tmp_path, monkeypatch):
    saved = []
    real = cli.save_run
    monkeypatch.setattr(cli, "save_run",
                        lambda path, *a: (saved.append((path.name, a[7] and a[7].batch)), real(path, *a)))
    corpus = write(tmp_path / "t.txt", POEM * 20)
    cli.main(["train", "--corpus", str(corpus), "--out", str(tmp_path / "run"), "--epochs", "1",
              "--save-every-steps", "2", *SMALL])
    inside = [batch for name, batch in saved if batch is not None]
    assert inside[:3] == [2, 4, 6] and all(name == "last.npz" for name, _ in saved)


def test_a_time_budget_stops_cleanly_and_resumes_exactly(tmp_path):
    corpus = write(tmp_path / "t.txt", POEM * 40)
    args = ["--corpus", str(corpus), "--epochs", "2", "--plot", *SMALL[:-2], "--val-fraction", "0.1"]
    r = scratchrnn("train", "--out", str(tmp_path / "cut"), "--max-minutes", "0.00001", *args)
    assert r.returncode == 0, r.stderr
    assert "stopped: the --max-minutes 1e-05 budget is spent, at epoch 1, minibatch 1" in r.stdout
    assert "validation" in r.stdout and (tmp_path / "cut" / "perplexity.png").exists()
    _, manifest = load_checkpoint(tmp_path / "cut" / "last.npz")
    assert manifest["epoch"] == 0 and manifest["batch"] == 1
    assert scratchrnn("train", "--resume", str(tmp_path / "cut"), "--device", "cpu").returncode == 0
    assert scratchrnn("train", "--out", str(tmp_path / "whole"), *args).returncode == 0
    a, _ = load_checkpoint(tmp_path / "cut" / "last.npz")
    b, _ = load_checkpoint(tmp_path / "whole" / "last.npz")
    assert all(np.array_equal(a[k], b[k]) for k in b)


def test_sigterm_saves_and_resume_is_exact(tmp_path):
    """A job scheduler's SIGTERM is Ctrl-C: saved inside the epoch, exit 130, and resumed exactly."""
    corpus = write(tmp_path / "t.txt", POEM * 200)
    args = ["--corpus", str(corpus), "--hidden", "96", "--layers", "2", "--engine", "reference", "--batch-size",
            "16", "--num-steps", "20", "--device", "cpu", "--log-every", "1", "--epochs", "6", "--val-fraction", "0"]
    out = tmp_path / "stopped"
    with running("train", "--out", str(out), *args) as proc:
        read_until(proc.stdout, "epoch    1")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "interrupted (SIGTERM): saved" in err and "Traceback" not in err, err
    assert scratchrnn("train", "--resume", str(out), "--device", "cpu").returncode == 0
    assert scratchrnn("train", "--out", str(tmp_path / "full"), *args).returncode == 0
    a, _ = load_checkpoint(out / "last.npz")
    b, _ = load_checkpoint(tmp_path / "full" / "last.npz")
    assert all(np.array_equal(a[k], b[k]) for k in b)


def test_a_terminal_that_hangs_up_saves_and_resume_is_exact(tmp_path):
    """The terminal a training runs in goes away (an ssh connection drops, its window is closed): the kernel hangs
    it up and sends SIGHUP, which ended the run where it stood, the epoch's minibatches lost (and a write to the
    hung-up terminal fails, EIO, which would end it too). Now it is Ctrl-C's stop: saved inside the epoch, exit 130,
    and resumed exactly; what it still writes to the terminal goes to /dev/null."""
    import pty
    corpus = write(tmp_path / "t.txt", POEM * 200)
    args = ["--corpus", str(corpus), "--hidden", "96", "--layers", "2", "--engine", "reference", "--batch-size",
            "16", "--num-steps", "20", "--device", "cpu", "--log-every", "1", "--epochs", "6", "--val-fraction", "0"]
    out = tmp_path / "stopped"
    pid, terminal = pty.fork()                        # the child's controlling terminal
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "scratchrnn", "train", "--out", str(out), *args])
    shown = b""
    while b"epoch    1" not in shown:
        shown += os.read(terminal, 4096)
    os.close(terminal)                                # the kernel hangs the terminal up: SIGHUP
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 130, shown.decode(errors="replace")[-500:]
    _, manifest = load_checkpoint(out / "last.npz")
    assert manifest["epoch"] < 6
    assert scratchrnn("train", "--resume", str(out), "--device", "cpu").returncode == 0
    assert scratchrnn("train", "--out", str(tmp_path / "full"), *args).returncode == 0
    a, _ = load_checkpoint(out / "last.npz")
    b, _ = load_checkpoint(tmp_path / "full" / "last.npz")
    assert all(np.array_equal(a[k], b[k]) for k in b)
    # started under nohup (SIGHUP ignored, the output in a file), the run outlives its terminal and ends its epochs
    was = signal.signal(signal.SIGHUP, signal.SIG_IGN)   # (ignored from the fork on: the hang-up may come at once)
    pid, terminal = pty.fork()
    if pid == 0:
        log = os.open(tmp_path / "nohup.out", os.O_WRONLY | os.O_CREAT)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.execv(sys.executable, [sys.executable, "-m", "scratchrnn", "train", "--out", str(tmp_path / "nohup"),
                                  "--corpus", str(corpus), "--hidden", "32", "--layers", "1", "--epochs", "2",
                                  "--device", "cpu"])
    signal.signal(signal.SIGHUP, was)
    log = tmp_path / "nohup.out"
    while not (log.exists() and "LSTM" in log.read_text()):
        time.sleep(0.05)                              # the run has started (before, the pty itself was not ready)
    os.close(terminal)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, log.read_text()
    assert load_checkpoint(tmp_path / "nohup" / "last.npz")[1]["epoch"] == 2


class LogThatFails:
    """Standard output that takes lines until one containing `at` comes, then fails as `error` (a full disk, a reader
    that has gone), and every write after it too; no file descriptor (as pytest's capture)."""

    def __init__(self, at, error):
        self.at, self.error, self.lines, self.failed = at, error, [], False

    def write(self, text):
        self.failed = self.failed or self.at in text
        if self.failed:
            raise self.error
        self.lines.append(text)
        return len(text)

    def flush(self):
        if self.failed:
            raise self.error


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), BrokenPipeError(errno.EPIPE,
                                   "Broken pipe")], ids=["a full disk", "a closed pipe"])
@pytest.mark.parametrize("where", ["inside the epoch", "at its end"])
def test_a_log_that_cannot_be_written_saves_and_resume_is_exact(tmp_path, monkeypatch, capsys, error, where):
    """`scratchrnn train ... > log` on a disk that fills, or `| tee log` whose tee is gone: a line of the log that
    could not be written ended the run where it stood, its epoch's minibatches lost (with --save-every 2, the epoch
    before too), the full disk with a traceback. Now the run stops there saved, as a Ctrl-C does, says so in one line
    on stderr (exit status 2; 141 for a closed pipe), and a resume ends with the weights of a run never stopped."""
    corpus = write(tmp_path / "t.txt", POEM * 20)
    flags = ["--corpus", str(corpus), "--epochs", "3", "--save-every", "2", *SMALL]
    flags += ["--log-every-steps", "3"] if where == "inside the epoch" else []
    cli.main(["train", "--out", str(tmp_path / "whole"), *flags])
    log = LogThatFails("minibatch 6/" if where == "inside the epoch" else "epoch    1  train", error)
    monkeypatch.setattr(sys, "stdout", log)
    out = tmp_path / "stopped"
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--out", str(out), *flags])
    monkeypatch.undo()
    assert stop.value.code == (EXIT_PIPE_CLOSED if isinstance(error, BrokenPipeError) else EXIT_ERROR)
    why = "its reader has closed the pipe" if isinstance(error, BrokenPipeError) else "No space left on device"
    at = "at epoch 1, minibatch 6" if where == "inside the epoch" else "after epoch 1"
    assert capsys.readouterr().err == (f"error: cannot write the run's log to standard output ({why}): saved "
                                       f"{out / 'last.npz'} {at}; resume with: scratchrnn train --resume {out}\n")
    _, manifest = load_checkpoint(out / "last.npz")
    assert (manifest["epoch"], manifest["batch"]) == ((0, 6) if where == "inside the epoch" else (1, 0))
    cli.main(["train", "--resume", str(out)])
    a, _ = load_checkpoint(out / "last.npz")
    b, _ = load_checkpoint(tmp_path / "whole" / "last.npz")
    assert all(np.array_equal(a[k], b[k]) for k in b)


def test_output_that_cannot_be_written_is_one_line(tmp_path, poem_run):
    """`> out.txt` on a full disk (/dev/full fails every write with ENOSPC): generate, and a train before its first
    minibatch, were a traceback; now one line, exit status 2, and no "Exception ignored" as the interpreter ends."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    _, run = poem_run
    with open("/dev/full", "w") as full:
        for command in (["generate", "--from", str(run), "--length", "50"],
                        ["train", "--corpus", str(write(tmp_path / "t.txt", POEM * 20)), "--out", str(tmp_path / "o"),
                         *SMALL]):
            r = subprocess.run([sys.executable, "-m", "scratchrnn", *command], stdout=full, stderr=subprocess.PIPE,
                               text=True, timeout=600)
            one_line_error(r, "error: cannot write to standard output (No space left on device)")
            assert r.returncode == 2 and "Exception ignored" not in r.stderr
    assert not (tmp_path / "o" / "last.npz").exists()


# ---------------------------------------------------------------------------------------------
# Bad input never loses a run
# ---------------------------------------------------------------------------------------------

def test_a_model_too_big_for_this_machine_is_refused_before_any_allocation(tmp_path):
    one_line_error(scratchrnn("train", "--hidden", "200000", "--out", str(tmp_path / "o"), "--device", "cpu"),
                   "needs about", "TiB of memory; this machine has")
    r = subprocess.run([sys.executable, "examples/train_deep_lstm.py", "--hidden", "200000", "--device", "cpu"],
                       capture_output=True, text=True, timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    one_line_error(r, "needs about", "of memory")


def test_a_manifest_that_claims_an_absurd_size_is_refused_before_allocating(poem_run, tmp_path):
    _, out = poem_run
    arrays, manifest = load_checkpoint(out / "last.npz")
    manifest["config"]["hidden"] = 10 ** 7
    save_checkpoint(tmp_path / "absurd.npz", arrays, manifest)
    one_line_error(scratchrnn("generate", "--from", str(tmp_path / "absurd.npz"), "--prefix", "T"),
                   "its manifest's model needs (40000000, ")


@pytest.mark.parametrize("how", ["generate", "resume", "init-from"])
def test_a_checkpoint_with_nan_weights_is_refused(poem_run, tmp_path, how):
    corpus, out = poem_run
    arrays, manifest = load_checkpoint(out / "last.npz")
    arrays["rnn.weight_hh_l0"] = arrays["rnn.weight_hh_l0"].copy()
    arrays["rnn.weight_hh_l0"][0, 0] = np.nan
    bad = tmp_path / "bad"
    bad.mkdir()
    save_checkpoint(bad / "last.npz", arrays, manifest)
    command = {"generate": ["generate", "--from", str(bad), "--prefix", "T"],
               "resume": ["train", "--resume", str(bad), "--epochs", "9"],
               "init-from": ["train", "--init-from", str(bad), "--corpus", str(corpus), "--out", str(tmp_path / "c")]}
    one_line_error(scratchrnn(*command[how]), "'rnn.weight_hh_l0' contain NaN or infinite values")


def test_a_text_larger_than_the_memory_is_refused_before_it_is_read(tmp_path):
    """A text read whole (train's default, --max-tokens -1): one that would not fit in memory was read until the
    kernel killed the process, with no word. Its size is checked first (a sparse file of 1 TB here: nothing of it is
    read), in one line that says how much it would take and what to do; no --out folder is left behind. With
    --max-tokens it is read through (below): this one is refused as binary at its first piece."""
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:
        f.truncate(10 ** 12)
    for tokens, need in (("char", "11.8 TiB"), ("word", "4.5 TiB")):
        r = scratchrnn("train", "--corpus", str(huge), "--tokens", tokens, "--out", str(tmp_path / "o"))
        one_line_error(r, f"reading corpus {huge} (931.3 GiB of text", f"needs about {need} of memory",
                       "train on its start: --max-tokens N reads it through once")
        assert not (tmp_path / "o").exists()
    example = [sys.executable, "examples/train_deep_lstm.py", "--corpus", str(huge), "--device", "cpu"]
    for flags, said in (["--full-text"], "needs about 11.8 TiB of memory"), ([], "looks binary (it contains NUL"):
        r = subprocess.run(example + flags, capture_output=True, text=True, timeout=600,
                           cwd=Path(__file__).resolve().parents[1])
        one_line_error(r, said)


def test_train_max_tokens_reads_a_text_larger_than_the_memory_through_and_holds_its_start(tmp_path, monkeypatch,
                                                                                          capsys):
    """train --max-tokens N read the whole text into memory and cut its ids after, so a text larger than the memory
    was refused even for its first N tokens, and a 2 GB text needed 26 GB (13 bytes a byte) for its first million.
    It is read through now, in pieces of whole lines, one held at a time: every token counted for the vocabulary (the
    book's: the whole text's), and only the first N held. Here against 26 MB of memory, a 4 MB text (refused whole)
    trains on its first 20,000 tokens, from a file and from standard input alike, the vocabulary and the ids those of
    the whole text; its resume reads only its start where each file has the digest the run kept (hashing it is
    quicker than counting its tokens), and reads it through where one has changed (a note where only past the start);
    a --max-tokens whose start would not fit is one line naming a smaller one."""
    from scratchrnn import backend, data
    from scratchrnn.data import char_ids, corpus_digest
    text = "".join(POEM if i % 7 else POEM + VIETNAMESE for i in range(4_000_000 // len(POEM)))
    text += "Zzz, the last line: Ω.\n"                       # characters the start never shows, in the vocabulary
    big = write(tmp_path / "big.txt", text)
    codes = code_points(normalize(text))
    vocab = char_vocab(codes)
    ids = char_ids(codes, vocab)
    monkeypatch.setattr(data, "STREAM_PIECE", 1 << 16)
    monkeypatch.setattr(backend, "available_memory", lambda device: 13 * 2_000_000)
    with pytest.raises(SystemExit):
        cli.main(["train", "--corpus", str(big), "--out", str(tmp_path / "whole"), *SMALL])
    assert "train on its start: --max-tokens N" in capsys.readouterr().err and not (tmp_path / "whole").exists()
    for name, corpus in (("file", str(big)), ("stdin", "-")):
        monkeypatch.setattr(sys, "stdin", Piped(text))
        cli.main(["train", "--corpus", corpus, "--max-tokens", "20000", "--epochs", "1", "--out",
                  str(tmp_path / name), *SMALL])
        _, manifest = load_checkpoint(tmp_path / name / "last.npz")
        assert manifest["vocab"] == vocab.idx_to_token and "Ω" in manifest["vocab"]
        assert manifest["corpus_digest"] == corpus_digest(ids[:20000])
        assert list(manifest["corpus_files"].values()) == [data.file_digest(text.encode())]
    capsys.readouterr()
    through = data.TextPieces.pieces                      # a resume whose files have the run's digests: not counted
    monkeypatch.setattr(data.TextPieces, "pieces", lambda *a: (_ for _ in ()).throw(AssertionError("counted")))
    cli.main(["train", "--resume", str(tmp_path / "file"), "--epochs", "2"])
    assert "epoch    2" in capsys.readouterr().out
    monkeypatch.setattr(data.TextPieces, "pieces", through)
    write(big, text.replace("Ω", "Ж"))                    # the same size, a character of its tail changed: counted
    with pytest.raises(SystemExit):
        cli.main(["train", "--resume", str(tmp_path / "file"), "--epochs", "3"])
    said = capsys.readouterr().err
    assert "the corpus now gives a vocabulary of" in said and f"changed since: {big} (" in said, said
    tail_changed = text.replace("Zzz, the", "zZz, the")   # past the first 20,000 tokens, the vocabulary the same
    assert char_vocab(code_points(normalize(tail_changed))).idx_to_token == vocab.idx_to_token
    write(big, tail_changed)
    cli.main(["train", "--resume", str(tmp_path / "file"), "--epochs", "3"])
    said = capsys.readouterr().err
    assert f"note: the corpus changed since: {big} (" in said and "; its first 20,000 tokens, which the run trains " \
        "on, are the same, and so is its vocabulary: the run goes on with them\n" in said, said
    write(big, text)
    with pytest.raises(SystemExit):
        cli.main(["train", "--corpus", str(big), "--max-tokens", "3000000", "--out", str(tmp_path / "o"), *SMALL])
    said = capsys.readouterr().err
    assert said.startswith("error: keeping the first 3,000,000 tokens of the text (more than ") and said.endswith(
        "available; a smaller --max-tokens keeps less of it\n") and said.count("\n") == 1, said
    assert not (tmp_path / "o").exists()
    with open(big, "ab") as f:                              # a binary tail: read through, it is refused as binary
        f.write(b"\x00" * 100)
    with pytest.raises(SystemExit):
        cli.main(["train", "--corpus", str(big), "--max-tokens", "200", "--out", str(tmp_path / "o"), *SMALL])
    assert "looks binary (it contains NUL bytes)" in capsys.readouterr().err


def test_evaluate_max_tokens_reads_only_the_start_of_a_long_text(poem_run, tmp_path, monkeypatch, capsys):
    """`evaluate --max-tokens N`, a quick look at a long test text, read all of it first: a text larger than the
    memory was refused even for its first thousand tokens. It reads only as much of its start as N tokens need
    (here a text followed by a sparse terabyte, which is never read), from a file or standard input, with the same
    perplexity as on that start alone; the whole text, too large, is refused in one line that says so; a run's own
    text read in part still gets its note (its digest taken where its size is a trained file's)."""
    corpus, out = poem_run
    start = write(tmp_path / "start.txt", (POEM + VIETNAMESE) * 40)
    huge = tmp_path / "huge.txt"
    huge.write_bytes(start.read_bytes())
    with open(huge, "ab") as f:
        f.truncate(10 ** 12)
    r = scratchrnn("evaluate", "--from", str(out), "--corpus", str(start), "--max-tokens", "3000")
    assert r.returncode == 0 and "of its first 3,000 tokens scored" in r.stdout, r.stderr
    ppl = r.stdout.split(" on ")[0]
    r = scratchrnn("evaluate", "--from", str(out), "--corpus", str(huge), "--max-tokens", "3000")
    assert r.returncode == 0 and r.stdout.startswith(f"{ppl} on {huge} (") and r.stderr == "", r.stderr
    r = scratchrnn("evaluate", "--from", str(out), "--corpus", "-", "--max-tokens", "3000", input=start.read_text())
    assert r.returncode == 0 and r.stdout.startswith(f"{ppl} on standard input ("), r.stderr
    one_line_error(scratchrnn("evaluate", "--from", str(out), "--corpus", str(huge)),
                   f"reading corpus {huge} (931.3 GiB of text", "needs about 11.8 TiB of memory",
                   "score its start: --max-tokens N reads only as much of it as N tokens need")
    one_line_error(scratchrnn("evaluate", "--from", str(out), "--corpus", str(huge), "--max-tokens", "100000"),
                   f"corpus '{huge}' looks binary (it contains NUL bytes)")      # the tail read, where N needs it
    from scratchrnn import backend, data
    monkeypatch.setattr(data, "START_BYTES", 1000)
    monkeypatch.setattr(backend, "available_memory", lambda device: 13 * 30_000)
    capsys.readouterr()
    cli.main(["evaluate", "--from", str(out), "--corpus", str(corpus), "--max-tokens", "100"])    # 1 kB of 3
    said = capsys.readouterr().err
    assert said.startswith(f"note: {corpus} is the run's own --corpus, which the run trained on"), said
    longer = write(tmp_path / "longer.txt", (POEM + VIETNAMESE) * 300)            # 56 KiB: 13 times that is more
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--from", str(out), "--corpus", str(longer), "--max-tokens", "50000"])
    assert capsys.readouterr().err.endswith("this machine has 380.9 KiB available; a smaller --max-tokens reads "
                                            "less of it\n")
    wide = write(tmp_path / "utf16.txt", (POEM + VIETNAMESE) * 100, encoding="utf-16")   # read whole: 2-byte breaks
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--from", str(out), "--corpus", str(wide), "--max-tokens", "50"])
    assert capsys.readouterr().err.endswith("available; convert it to UTF-8 (iconv -f utf-16 -t utf-8 FILE > NEW), "
                                            "whose start alone is read\n")


def test_the_loading_benchmark_measures_the_memory_the_check_assumes():
    r = subprocess.run([sys.executable, "benchmarks/bench_load.py", "--sizes", "1", "--baseline-up-to", "1"],
                       capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr
    assert "| 1 MB | book |" in r.stdout and "old loader" in r.stdout
    assert re.search(r"\| 1 MB \| char \| [\d,]+ MiB \| [\d.]+ \| - \(under 10 MB", r.stdout), r.stdout
    assert "data.LOAD_BYTES_PER_BYTE: {'char': 13, 'word': 5}" in r.stdout


def test_min_freq_reads_rare_words_as_unk_and_the_run_keeps_it(tmp_path):
    """--min-freq N (the book's Vocab(min_freq)): a word-level run keeps only the words seen N times, the rest read
    as <unk> with a note; the checkpoint's vocabulary is that one, generate never prints <unk>, a resume or an
    --init-from with another --min-freq is refused in one line, and one that leaves no word is refused."""
    rng = np.random.default_rng(0)
    common = ["the", "time", "traveller", "said", "machine", "and", "of", "a"]
    words = [common[i] if i < len(common) else f"rare{j}" for j, i in enumerate(rng.integers(0, 10, 3000))]
    text = tmp_path / "words.txt"
    text.write_text(" ".join(words) + "\n")
    out = tmp_path / "run"
    run = ["train", "--corpus", str(text), "--tokens", "word", "--hidden", "16", "--layers", "1", "--batch-size", "4",
           "--num-steps", "8", "--device", "cpu", "--epochs", "1"]
    r = scratchrnn(*run, "--min-freq", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert re.search(r"note: --min-freq 2 reads [\d,]+ of the 3,000 tokens \([\d.]+%\) as <unk>; the vocabulary keeps "
                     r"8 and <unk>", r.stderr), r.stderr
    _, manifest = load_checkpoint(out / "last.npz")
    assert sorted(manifest["vocab"]) == sorted(["<unk>", *common]) and manifest["config"]["min_freq"] == 2
    g = scratchrnn("generate", "--from", str(out), "--prefix", "the", "--length", "40", "--temperature", "1",
                   "--seed", "1")
    assert g.returncode == 0 and "<unk>" not in g.stdout and len(g.stdout.split()) == 41, g.stderr
    # The model was shown <unk> for the rare words: a prefix's rare word is read as they were, with a note (it was
    # refused); a run that left nothing out still refuses a word it never saw.
    g = scratchrnn("generate", "--from", str(out), "--prefix", "the rare5 time unheard", "--length", "5")
    assert g.returncode == 0 and g.stdout.startswith("the rare5 time unheard ") and len(g.stdout.split()) == 9
    assert g.stderr == ("note: the prefix's 'rare5' 'unheard' are not in the run's vocabulary, and read as <unk>, as "
                        "its training text's were\n"), g.stderr
    one_line_error(scratchrnn("train", "--resume", str(out), "--epochs", "2", "--min-freq", "3"),
                   "--min-freq 3 contradicts the checkpoint's 2")
    one_line_error(scratchrnn(*run, "--init-from", str(out), "--min-freq", "3", "--out", str(tmp_path / "new")),
                   "--min-freq 3 contradicts the run of --init-from")
    assert scratchrnn("train", "--resume", str(out), "--epochs", "2").returncode == 0
    one_line_error(scratchrnn(*run, "--min-freq", "100000", "--out", str(tmp_path / "none")),
                   "is seen 100000 times (--min-freq 100000)", "lower --min-freq")
    assert not (tmp_path / "none").exists()
    r = scratchrnn(*run, "--out", str(tmp_path / "all"))
    assert r.returncode == 0 and "--min-freq" not in r.stderr, r.stderr
    one_line_error(scratchrnn("generate", "--from", str(tmp_path / "all"), "--prefix", "the unheard"),
                   "prefix has words outside the vocabulary: 'unheard'")
