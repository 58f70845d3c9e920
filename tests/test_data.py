import re
import sys

import numpy as np
import pytest

from conftest import Piped
from scratchrnn import data
from scratchrnn.data import (SeqDataLoader, Vocab, load_corpus, preprocess_book, read_text,
                             seq_data_iter_random, seq_data_iter_sequential)
from scratchrnn.errors import DataError


def test_time_machine_vocabulary_matches_the_book():
    corpus, vocab = load_corpus()
    assert len(vocab) == 28
    assert vocab.idx_to_token[:4] == ["<unk>", " ", "e", "t"]     # the book's order by frequency
    assert len(corpus) == 10000 and corpus.dtype == np.int64
    assert "".join(vocab.to_tokens(corpus[:13])) == "the time mach"


def test_whole_text_and_preprocessing():
    corpus, _ = load_corpus(max_tokens=-1)
    assert len(corpus) > 170000
    assert preprocess_book("It's 1898, Mr. Wells!") == ["it s mr wells"]


@pytest.mark.parametrize("fragment, charset, sep, read", [
    ("The  Time, ", "book", "", "the time "),        # as inside the text; its trailing blank kept (preprocess strips)
    (" it's 1898", "book", "", " it s "),
    ("  hi\t there\n", "wide", "", " hi there"),    # wide: blanks collapsed, lines joined as the text's are
    ("a\r\nb", "raw", "", "a\nb"),                   # raw: the fragment itself, its line breaks as \n
    ("e\u0301 x", "raw", " ", "\u00e9 x"),           # NFC, as every text is read
    ("The Time\nMachine", "book", " ", "the time machine"),
])
def test_a_fragment_is_read_as_inside_the_text(fragment, charset, sep, read):
    assert data.read_as_text(fragment, charset, sep) == read
    if charset != "raw":                               # what the charset makes of the same words inside a text
        assert read.strip() in data.apply_charset("Once. " + fragment + " more", charset, sep)


@pytest.mark.parametrize("token, min_freq", [("char", 1), ("word", 1), ("word", 2)])
def test_a_trained_vocabulary_grown_by_a_texts_new_tokens(tmp_path, token, min_freq):
    """grow (train --init-from): the trained vocabulary first, its ids unchanged, then the text's tokens it lacks,
    most frequent first, those seen fewer than min_freq times left out (read as '<unk>'); one note names them."""
    trained = Vocab(idx_to_token=["<unk>", "a", "b", " "] if token == "char" else ["<unk>", "a", "b"], token=token)
    path = tmp_path / "t.txt"
    path.write_text("a b c a d d d c e\n")
    notes = []
    corpus, vocab = load_corpus(path, max_tokens=-1, token=token, charset="raw", vocab=trained, grow=True,
                                report=notes.append, min_freq=min_freq)
    new = {("char", 1): ["d", "c", "e", "\n"], ("word", 1): ["d", "c", "e"], ("word", 2): ["d", "c"]}[token, min_freq]
    assert vocab.idx_to_token == trained.idx_to_token + new
    assert vocab.to_tokens(corpus) == [t if t in vocab.token_to_idx else "<unk>" for t in
                                      (list("a b c a d d d c e\n") if token == "char" else "a b c a d d d c e".split())]
    assert notes[0] == (f"note: {len(new)} tokens new to the model's vocabulary of {len(trained)} are added to it, "
                        f"with fresh weights: " + " ".join(map(repr, new)))


def test_any_utf8_file_and_several_files(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("Ünïcode is fine; abc abc\n", encoding="utf-8")
    b.write_text("zzz\n", encoding="utf-8")
    corpus, vocab = load_corpus([a, b], max_tokens=-1)
    assert "".join(vocab.to_tokens(corpus)) == "n code is fine abc abczzz"
    assert vocab["z"] != vocab.unk and vocab["Q"] == vocab.unk
    # a file given twice (`--corpus texts/*.txt texts/a.txt`) is read twice, as asked, and a note says so
    notes = []
    corpus, vocab = load_corpus([b, a, tmp_path / "." / "b.txt"], max_tokens=-1, report=notes.append)
    assert "".join(vocab.to_tokens(corpus)) == "zzzn code is fine abc abczzz"
    assert notes[0] == (f"note: {b} given more than once, and read each time (the files of --corpus are read in turn as "
                        "one text)")


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"), (b"", "is empty"), (b"  \n\n", "is empty"),
    (b"abc\x00\x01def", "looks binary"), (b"caf\xe9 latin-1", "not UTF-8"),
])
def test_bad_corpus_files(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_text(path)


def test_a_text_with_a_few_damaged_bytes_is_told_how_to_drop_them(tmp_path, monkeypatch):
    """A UTF-8 text with one damaged byte was told to convert it from cp1252, which would garble its every accent;
    the line counts the bad bytes (in the first UTF8_SAMPLE bytes of a long text) and names both ways on."""
    path = tmp_path / "scraped.txt"
    path.write_bytes("é".encode() * 100 + b"\xff" + b"a" * 300 + b"\xfe")
    with pytest.raises(DataError, match=r"is not UTF-8 text: 2 bad bytes \(the first at offset 200: b'\\xff'\)"):
        read_text(path)
    monkeypatch.setattr(data, "UTF8_SAMPLE", 300)
    with pytest.raises(DataError, match=r"1 bad byte in its first 300 B \(the first at offset 200"):
        read_text(path)


@pytest.mark.parametrize("compress, says", [
    ("gzip", "is gzip-compressed, not text: read it through a pipe, --corpus <(zcat "),
    ("bz2", "is bzip2-compressed, not text: read it through a pipe, --corpus <(bzcat "),
    ("lzma", "is xz-compressed, not text: read it through a pipe, --corpus <(xzcat "),
    ("zipfile", "is a zip archive, not text: unzip it"),
])
def test_a_compressed_text_says_what_it_is_and_how_to_read_it(tmp_path, compress, says):
    """book.txt.gz 'looked binary (it contains NUL bytes)', or was 'not UTF-8 text'."""
    import importlib
    import zipfile
    text = ("the time machine, by h g wells\n" * 200).encode()
    path = tmp_path / "book.compressed"
    if compress == "zipfile":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("book.txt", text)
    else:
        path.write_bytes(importlib.import_module(compress).compress(text))
    with pytest.raises(DataError, match=re.escape(f"corpus {str(path)!r} {says}")):
        read_text(path)
    (tmp_path / "BZh.txt").write_text("BZh is how a bzip2 file starts, and this is a text\n")
    assert read_text(tmp_path / "BZh.txt").startswith("BZh is")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_a_text_in_utf16_or_utf32_with_its_byte_order_mark_is_read(tmp_path, encoding):
    """Windows' Notepad saves "Unicode" as UTF-16 LE with a byte-order mark (and PowerShell 5's > writes it): it was
    refused as binary (its NUL bytes). With the mark, the text is read in its encoding; as any text, NFC, \n."""
    path = tmp_path / "corpus.txt"
    path.write_bytes("\ufeffGrüße,\r\nzweimal 😀".encode(encoding))
    assert read_text(path) == "Grüße,\nzweimal 😀"


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe caf\xe9", "nor the UTF-16 its byte-order mark announces"),   # odd length: not UTF-16
    (b"caf\xe9 latin-1 \xe0", r"2 bad bytes \(the first at offset 3: b'\\xe9'\); if it is in another encoding, "
                               r"convert it \(iconv -f cp1252 -t utf-8 FILE > NEW for a Windows text\); if a few bytes "
                               r"are damaged, drop them \(iconv -f utf-8 -t utf-8 -c FILE > NEW\)"),
    ("\ufeff\x00\x01 abc".encode("utf-16"), "looks binary"), (" \n ".encode("utf-16"), "is empty"), (b"\xef\xbb\xbf \n", "is empty"),
])
def test_what_a_byte_order_mark_or_a_wrong_encoding_gives(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_text(path)


def test_corpus_with_no_letters(tmp_path):
    path = tmp_path / "digits.txt"
    path.write_text("1234 5678\n")
    with pytest.raises(DataError, match="no tokens"):
        load_corpus(path)


def test_corpus_too_short_for_one_minibatch():
    with pytest.raises(DataError, match="too short for one minibatch"):
        SeqDataLoader(np.arange(100), batch_size=32, num_steps=35)


@pytest.mark.parametrize("tokens, fit", [(1155, "--batch-size 31 (the most that fit at --num-steps 35)"),
                                         (71, "--batch-size 1 (the most that fit at --num-steps 35)"),
                                         (70, "--batch-size 1 --num-steps 34 (the most that fit in one row)"),
                                         (3, "--batch-size 1 --num-steps 1 (the most that fit in one row)"),
                                         (2, None), (0, None)])
def test_a_text_too_short_for_a_minibatch_is_told_the_sizes_that_fit_it(tokens, fit):
    """"use a longer text or smaller --batch-size/--num-steps" left the sizes to guess, and said so of a text of one
    token too, which no size fits. The line names the most rows of the run's --num-steps that fit, else one row of
    the most steps; for fewer than 3 tokens, nothing but a longer text. Each size it names fits, the next does not."""
    assert SeqDataLoader.sizes_that_fit(tokens, 35) == fit
    with pytest.raises(DataError) as e:
        SeqDataLoader.check_length(tokens, 32, 35)
    assert str(e.value).endswith(f"; use a longer text, or {fit}" if fit else
                                 "; use a longer text: a minibatch needs 3 tokens at the least (one to read, one to "
                                 "predict, one to start at)")
    if fit:                                   # the rows at --num-steps 35, or the steps of one row: the most
        n = int(re.findall(r"\d+", fit)[-1 if "in one row" in fit else 0])
        sizes = (lambda k: (k, 35)) if "in one row" not in fit else (lambda k: (1, k))
        SeqDataLoader.check_length(tokens, *sizes(n))
        with pytest.raises(DataError):
            SeqDataLoader.check_length(tokens, *sizes(n + 1))


def test_sequential_partitioning_continues_rows():
    corpus = np.arange(1000)
    batches = list(seq_data_iter_sequential(corpus, 4, 5, np.random.default_rng(0)))
    assert len(batches) >= 2
    for X, Y in batches:
        assert X.shape == Y.shape == (4, 5)
        np.testing.assert_array_equal(Y, X + 1)                      # Y is X shifted by one token
    for (X0, _), (X1, _) in zip(batches, batches[1:]):
        np.testing.assert_array_equal(X1[:, 0], X0[:, -1] + 1)       # row b continues row b


def test_random_sampling_draws_disjoint_subsequences():
    corpus = np.arange(1000)
    batches = list(seq_data_iter_random(corpus, 4, 5, np.random.default_rng(0)))
    starts = np.concatenate([X[:, 0] for X, _ in batches])
    assert len(set(starts.tolist())) == len(starts)
    for X, Y in batches:
        np.testing.assert_array_equal(Y, X + 1)
        np.testing.assert_array_equal(np.diff(X, axis=1), 1)


def test_loader_is_seeded_and_recuts_each_epoch():
    corpus, _ = load_corpus()
    a = SeqDataLoader(corpus, 32, 35, use_random_iter=True, seed=3)
    b = SeqDataLoader(corpus, 32, 35, use_random_iter=True, seed=3)
    first_a, first_b = [x for x, _ in a], [x for x, _ in b]
    assert all(np.array_equal(x, y) for x, y in zip(first_a, first_b))
    second_a = [x for x, _ in a]
    assert not np.array_equal(first_a[0], second_a[0])


def test_vocab_round_trip():
    v = Vocab(list("hello world"))
    assert v.to_tokens(v[list("hello")]) == list("hello")
    assert Vocab(idx_to_token=v.idx_to_token).token_to_idx == v.token_to_idx


def test_word_ids_equal_the_books_vocab_of_the_split_words_without_a_list_of_them():
    """word_ids reads words one by one: the same vocabulary as Vocab(text.split()) (most frequent first, ties in
    order of first appearance, a word '<unk>' is '<unk>'), the same ids, the same whitespace as str.split (Unicode's,
    the ASCII separators included); with a given vocabulary, its ids and '<unk>' for the rest; at a fraction of the
    list's memory."""
    import tracemalloc
    from scratchrnn.data import Vocab, word_ids
    text = "b a c a b <unk> d\x1ce\u3000f\xa0g  h\n a\t" * 3 + "z"
    words = text.split()
    book = Vocab(words, token="word")
    ids, vocab = word_ids(text)
    assert vocab.idx_to_token == book.idx_to_token and vocab.sep == " "
    np.testing.assert_array_equal(ids, [book[w] for w in words])
    more = text + " unseen b"
    ids, same = word_ids(more, book)
    assert same is book
    np.testing.assert_array_equal(ids, [book[w] for w in more.split()])
    assert word_ids("  \n ")[0].size == 0
    big = " ".join(f"w{i % 5000}" for i in range(200_000))
    tracemalloc.start()
    ids, _ = word_ids(big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert ids.size == 200_000 and peak < 50 * ids.size             # a list of the words alone: about 60 bytes each


@pytest.mark.parametrize("min_freq", [1, 2, 3, 7])
def test_min_freq_leaves_out_the_rare_tokens_as_the_books_vocab_does(min_freq):
    """char_vocab and word_ids with min_freq: the vocabulary of the book's Vocab(tokens, min_freq) (the tokens seen
    fewer times left out), the same ids, the rare ones read as '<unk>'."""
    from scratchrnn.data import char_ids, char_vocab, code_points, word_ids
    text = "the time traveller said the time is a dimension; so said filby, the psychologist said no " * 2 + "zq"
    book = Vocab(list(text), min_freq=min_freq)
    vocab = char_vocab(code_points(text), min_freq)
    assert vocab.idx_to_token == book.idx_to_token
    np.testing.assert_array_equal(char_ids(code_points(text), vocab), book[list(text)])
    words = text.split()
    book = Vocab(words, min_freq=min_freq, token="word")
    ids, vocab = word_ids(text, min_freq=min_freq)
    assert vocab.idx_to_token == book.idx_to_token
    np.testing.assert_array_equal(ids, book[words])
    assert (min_freq > 1) == (0 in ids)


def test_min_freq_through_load_corpus_says_what_it_reads_as_unk(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("a b a b a c d\n" * 5 + "e f\n")
    notes = []
    corpus, vocab = load_corpus(f, max_tokens=-1, token="word", charset="raw", min_freq=2, report=notes.append)
    assert vocab.idx_to_token == ["<unk>", "a", "b", "c", "d"] and int(np.count_nonzero(corpus == 0)) == 2
    assert notes == ["note: --min-freq 2 reads 2 of the 37 tokens (5.4%) as <unk>; the vocabulary keeps 4 and <unk>"]
    with pytest.raises(DataError, match=r"no token of corpus .* is seen 100 times \(--min-freq 100\)"):
        load_corpus(f, max_tokens=-1, token="word", charset="raw", min_freq=100)


def test_word_tokens_on_a_text_written_without_spaces_say_so(tmp_path):
    """--tokens word splits at blanks: a Japanese text was read a line a word (a vocabulary of its distinct lines,
    2 for a text of one line repeated) with no word said, or refused as 'too short' when it had few lines. A note
    now says how many characters a word is and names --tokens char; a text with spaces has none."""
    japanese, english = tmp_path / "ja.txt", tmp_path / "en.txt"
    japanese.write_text("時は金なり。旅人は言った、時間は川のように流れる。\n" * 40, encoding="utf-8")
    english.write_text("The Time Traveller (for so it will be convenient to speak of him) was expounding.\n" * 40)
    notes = []
    corpus, vocab = load_corpus(japanese, max_tokens=-1, token="word", charset="raw", report=notes.append)
    assert len(corpus) == 40 and len(vocab) == 2
    assert notes == [f"note: --tokens word splits the text at blanks, and {japanese} has 40 words in 1,040 characters, "
                     f"26 a word (a language written without spaces, as Chinese or Japanese, is read a line or a "
                     f"sentence a word); --tokens char reads it character by character"]
    notes.clear()
    load_corpus(english, max_tokens=-1, token="word", charset="raw", report=notes.append)
    load_corpus(japanese, max_tokens=-1, token="char", charset="raw", report=notes.append)
    assert notes == []
    with pytest.raises(DataError, match="corpus has 1 token, too short"):
        SeqDataLoader.check_length(1, 2, 3)


def test_a_large_text_is_announced_before_it_is_read(tmp_path, monkeypatch):
    """Reading a text of hundreds of MB takes seconds to minutes with nothing else to show: a line first."""
    f = tmp_path / "t.txt"
    f.write_text("the time machine\n" * 100)                                 # 1,700 bytes
    notes = []
    load_corpus(f, max_tokens=-1, charset="raw", report=notes.append)
    assert notes == []
    monkeypatch.setattr(data, "READING_NOTE_BYTES", 1000)
    load_corpus([f, f], max_tokens=-1, charset="raw", report=notes.append)
    assert notes[-1] == "reading 3.3 KiB of text"
    import functools
    import io                                   # read through (--max-tokens): why all of it, and a bar on a terminal
    terminal = io.StringIO()
    terminal.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(data, "STREAM_PIECE", 100)
    monkeypatch.setattr(data, "tqdm", functools.partial(data.tqdm, mininterval=0, miniters=1))   # each update shown
    load_corpus([f, f], max_tokens=20, charset="raw", report=notes.append)
    assert notes[-1] == "reading 3.3 KiB of text, all of it for its vocabulary, its first 20 tokens to train on"
    assert "reading: 100%" in terminal.getvalue() and "3.32k/3.32k" in terminal.getvalue()


def test_each_files_digest_comes_from_its_one_reading(tmp_path, monkeypatch):
    """The digest a run's checkpoint keeps of each corpus file (its size and BLAKE2b) is taken from the bytes read to
    load it: the file was read a second time to hash it. None for the shipped book."""
    import hashlib
    from pathlib import Path
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("the time machine\n" * 40)
    b.write_bytes("caf\u00e9 au lait\r\n".encode() * 30)
    reads, real = [], Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: (reads.append(self.name), real(self))[1])
    digests = {}
    load_corpus([a, b], max_tokens=-1, charset="raw", digests=digests)
    assert reads == ["a.txt", "b.txt"]
    assert digests == {str(p): f"{p.stat().st_size}:{hashlib.blake2b(real(p), digest_size=16).hexdigest()}"
                       for p in (a, b)}
    shipped = {}
    load_corpus(max_tokens=100, digests=shipped)
    assert shipped == {}


def mixed_files(folder, seed, size, first_end, more=()):
    """Four files of random text (`size` pieces each, of `more` too): words, blanks, tabs, line breaks of every kind,
    accents composed and decomposed, other scripts. The first ends with `first_end`, the second starts with a UTF-8
    byte-order mark and ends without a line break, the third is in UTF-16, the fourth is the first reversed."""
    rng = np.random.default_rng(seed)
    pieces = ["the", " ", "  ", "Time", "\n", "\r\n", "\r", "\t", "cafe\u0301", "caf\u00e9", "42,", "!", "时间", "🙂",
              "\n\n", "Machine", *more]
    texts = ["".join(rng.choice(pieces, size=size)) for _ in range(3)]
    files = [folder / f"{i}.txt" for i in range(4)]
    files[0].write_bytes(texts[0].encode() + first_end)
    files[1].write_bytes(b"\xef\xbb\xbf" + texts[1].encode())
    files[2].write_bytes(texts[2].encode("utf-16"))                # (its line breaks: 2 bytes; read whole)
    files[3].write_bytes(texts[0][::-1].encode())
    return files


@pytest.mark.parametrize("token", ["char", "word"])
@pytest.mark.parametrize("charset", ["raw", "book", "wide"])
def test_a_texts_start_read_alone_gives_the_whole_texts_first_tokens(tmp_path, monkeypatch, token, charset):
    """evaluate --max-tokens N reads only as much of a text's start as its first N tokens need (read_start: a few
    bytes here, then twice as many), each file cut after its last line break read: the ids are the whole text's first
    N, for every charset and token, over line breaks of every kind, decomposed accents, blanks, other scripts,
    several files (one without a final line break, one with a UTF-8 byte-order mark, one in UTF-16); and the files
    read to their end keep their digests, as a whole reading's."""
    files = mixed_files(tmp_path, len(token) + 7 * len(charset), 400, b"\n")
    monkeypatch.setattr(data, "START_BYTES", 5)
    monkeypatch.setattr(data, "START_BYTES_PER_TOKEN", 1)
    whole_digests = {}
    whole, vocab = load_corpus(files, max_tokens=-1, token=token, charset=charset, digests=whole_digests)
    assert len(whole) > 300
    for n in [*range(2, 120), 333, len(whole) // 2, len(whole) - 1, len(whole), len(whole) + 5]:
        digests = {}
        start, _ = load_corpus(files, max_tokens=n, token=token, charset=charset, vocab=vocab, digests=digests,
                               scoring=True)
        assert np.array_equal(start, whole[:n]), n
        assert digests == {path: whole_digests[path] for path in digests}
    assert len(digests) == len(files)                                          # (the last read them all)
    short = {}
    load_corpus(files, max_tokens=3, token=token, charset=charset, vocab=vocab, digests=short, scoring=True)
    assert short == {}                                                         # the first file read in part


@pytest.mark.parametrize("token", ["char", "word"])
@pytest.mark.parametrize("charset", ["raw", "book", "wide"])
def test_a_text_read_through_in_pieces_gives_the_whole_texts_vocabulary_and_first_tokens(tmp_path, monkeypatch, token,
                                                                                         charset):
    """train --max-tokens N reads its text through in pieces of whole lines (a few bytes here), one held at a time:
    the vocabulary (counted over all of it: most frequent first, ties in order of first appearance, --min-freq), the
    first N ids, the notes (a charset's losses, long words) and the files' digests are those of the text read whole,
    over line breaks of every kind (a "\r\n" cut between two pieces), decomposed accents, a U+FEFF inside the text and
    a byte-order mark at a file's start, several files (one without a final line break, one in UTF-16); onto a
    trained vocabulary too, given or grown (--init-from); and a resume's, whose files have the digests its run kept
    (its start read alone, onto the run's vocabulary)."""
    files = mixed_files(tmp_path, len(token) + 7 * len(charset), 300, b"\r",
                        ["\ufeff", "<unk>", "\x85", "\u2028", "a", "b", "c"])
    unk = "as <unk>"                                                           # (a share of the tokens kept)
    trained = Vocab(idx_to_token=["<unk>", "t", "h", "e", " ", "the", "a"], token=token)
    for min_freq, given, grow in ((1, None, False), (3, None, False), (1, trained, False), (2, trained, True)):
        whole_notes, whole_digests = [], {}
        whole, vocab = load_corpus(files, max_tokens=-1, token=token, charset=charset, min_freq=min_freq, vocab=given,
                                   grow=grow, report=whole_notes.append, digests=whole_digests)
        assert len(whole) > 200
        for piece in (1, 3, 64):
            monkeypatch.setattr(data, "STREAM_PIECE", piece)
            for n in (1, 2, 57, len(whole) - 1, len(whole) + 5):
                notes, digests = [], {}
                if not whole[:n].any():                                        # all <unk>: refused, as read whole
                    with pytest.raises(DataError, match="<unk>"):
                        load_corpus(files, max_tokens=n, token=token, charset=charset, min_freq=min_freq, vocab=given,
                                    grow=grow)
                    continue
                start, same = load_corpus(files, max_tokens=n, token=token, charset=charset, min_freq=min_freq,
                                          vocab=given, grow=grow, report=notes.append, digests=digests)
                assert same.idx_to_token == vocab.idx_to_token and np.array_equal(start, whole[:n]), (piece, n)
                assert digests == whole_digests
                if given is None:                              # a resume: the digests the run kept, the start read
                    digests = {}
                    start, same = load_corpus(files, max_tokens=n, token=token, charset=charset, min_freq=min_freq,
                                              digests=digests, known=(vocab.idx_to_token, whole_digests))
                    assert same.idx_to_token == vocab.idx_to_token and np.array_equal(start, whole[:n])
                    assert digests == whole_digests
                assert [x for x in notes if unk not in x] == [x for x in whole_notes if unk not in x]


def test_a_text_read_through_refuses_what_is_not_text_where_it_comes(tmp_path, monkeypatch):
    """Read through (train --max-tokens), a piece that is not text far into a file, or a file with none, is refused
    as the whole reading refuses it, naming where the first bad byte is in the file."""
    monkeypatch.setattr(data, "STREAM_PIECE", 16)
    path, other = tmp_path / "t.txt", tmp_path / "u.txt"
    for tail, said in ((b"caf\xe9\n", r"is not UTF-8 text: 1 bad byte in the \d+ B from offset \d+ \(the first at "
                                       r"offset 603: b'\\xe9'\)"),
                       (b"\x00" * 5 + b"\n", "looks binary"), (b"\xff\xfe ab", "is not UTF-8 text")):
        path.write_bytes(b"a a a\n" * 100 + tail + b"a a\n" * 10)
        with pytest.raises(DataError, match=said):
            load_corpus(path, max_tokens=10, charset="raw")
    path.write_bytes(b"a a a\n" * 100)
    other.write_bytes(b" \n\t \n")
    with pytest.raises(DataError, match=f"corpus '{other}' is empty"):
        load_corpus([path, other], max_tokens=10, charset="raw")


def test_standard_input_is_named_so_in_what_is_said_of_its_tokens(monkeypatch):
    """A text piped in whose tokens a charset leaves none of said "corpus - has no tokens left": it is named."""
    monkeypatch.setattr(sys, "stdin", Piped("12 34\n"))
    with pytest.raises(DataError, match="^corpus standard input has no tokens left after preprocessing with --charset "
                                        "book"):
        load_corpus("-", max_tokens=-1, charset="book")


def test_a_texts_start_stops_at_a_binary_tail_it_reads(tmp_path, monkeypatch):
    """Reading a start, a line not yet ended that is not text (NUL bytes, bytes that are not UTF-8) is refused as a
    whole reading refuses it, and is not read on for a line break that never comes."""
    monkeypatch.setattr(data, "START_BYTES", 16)
    vocab = Vocab(idx_to_token=["<unk>", "a", " "])
    for tail, said in ((b"\x00" * 64, "looks binary"), (b"\xff\xfe" * 40, "is not UTF-8 text")):
        path = tmp_path / "t.txt"
        path.write_bytes(b"a a a\n" + tail + b"\na a a\n" * 100)
        with pytest.raises(DataError, match=said):
            load_corpus(path, max_tokens=1000, charset="raw", vocab=vocab, scoring=True)


def test_a_texts_start_is_cut_at_an_old_mac_line_break_and_a_line_never_ended_is_said(tmp_path, monkeypatch):
    """A text whose lines end in "\r" alone (an old Mac's) has its start read as any other's (cut after a "\r", the
    "\n" the whole text reads it as): the binary tail after it is never read. A text with no line break at all is
    read on to its first line's end, and one too long for the memory is refused saying so, not with a smaller
    --max-tokens, which would not help."""
    from scratchrnn import backend
    from scratchrnn.errors import ConfigError
    vocab = Vocab(idx_to_token=["<unk>", "a", " ", "\n"])
    monkeypatch.setattr(data, "START_BYTES", 1000)
    mac = tmp_path / "mac.txt"
    mac.write_bytes(b"a a\r" * 5000 + b"\x00" * 100)
    corpus, _ = load_corpus(mac, max_tokens=100, charset="raw", vocab=vocab, scoring=True)
    assert "".join(vocab.to_tokens(corpus)) == "a a\n" * 25
    one_line = tmp_path / "one.txt"
    one_line.write_bytes(b"a " * 100_000)
    monkeypatch.setattr(data, "STREAM_PIECE", 4096)
    monkeypatch.setattr(backend, "available_memory", lambda device: 13 * 50_000)
    with pytest.raises(ConfigError, match="it is read in whole lines, and a line of it has not ended yet: break its "
                                        r"lines first \(fold -s -w 1000 FILE > NEW\)"):
        load_corpus(one_line, max_tokens=100, charset="raw", vocab=vocab, scoring=True)
    one_line.write_bytes(b"a " * 100_000 + b"\n")
    with pytest.raises(ConfigError, match="a line of it has not ended yet"):  # the memory fills before the break
        load_corpus(one_line, max_tokens=100, charset="raw", vocab=vocab, scoring=True)
    one_line.write_bytes(b"a " * 10_000 + b"\n" + b"a " * 90_000)
    assert len(load_corpus(one_line, max_tokens=100, charset="raw", vocab=vocab, scoring=True)[0]) == 100
