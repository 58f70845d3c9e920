"""The text pipeline (d2l.ai, "Text Preprocessing" and "Language Models and the Dataset"), for the book and
for any text.

    file --read_text-----> str: UTF-8 (UTF-16/32 with a byte-order mark), Unicode NFC, line breaks as "\n", no
                           byte-order mark
         --charset-------> raw: every character as written | book: lower-case letters and spaces, the
                           book's preprocessing | wide: every printable character, runs of blanks as one
         --tokenize------> character (or word) tokens
         --Vocab---------> integer ids, most frequent first, '<unk>' = 0
         --iterators-----> minibatches X, Y of shape (batch_size, num_steps), Y = X shifted by one

Characters are counted and turned into ids with NumPy over the text's code points, never as a Python list
of one-character strings, so a text of 100 MB loads in seconds (benchmarks/bench_load.py).
The Time Machine ships inside the package (scratchrnn/data/timemachine.txt); nothing is downloaded.
"""
import codecs
import collections
import hashlib
import math
import re
import string
import sys
import unicodedata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .backend import check_memory, human_bytes
from .errors import DataError, EmptyText, quoted

TIME_MACHINE = Path(__file__).parent / "data" / "timemachine.txt"
CHARSETS = ("raw", "book", "wide")
TOKENS = ("char", "word")
# A charset that drops or changes more than this share of a text's characters says so (one line).
CHARSET_LOSS_WARNING = 0.01
# --tokens word on a text whose words average more than this many characters says so (one line): a text written
# without spaces (Chinese, Japanese) is read a line or a sentence a word; English averages about 6 with its blank.
LONG_WORD_CHARACTERS = 15
# Peak memory of reading a text and training on it, per byte of the file (README "Loading a text"; measured on a
# 48 MiB ASCII text, the most per byte: a character is a byte there, and each becomes an 8-byte id): characters 12.6
# (the text, its code points, its ids), words 4.1.
LOAD_BYTES_PER_BYTE = {"char": 13, "word": 5}
# A text this large is announced before it is read (a line, through load_corpus's report): reading takes seconds
# to minutes (README "Loading a text": 101 MB in 7-12 s) with nothing else to show.
READING_NOTE_BYTES = 64 << 20


# ----------------------------------------------------------------------------------------------
# Reading and preprocessing
# ----------------------------------------------------------------------------------------------

# A text that starts with one of these byte-order marks is read in its encoding: Windows' Notepad saves
# "Unicode" as UTF-16 LE, and Windows PowerShell 5's `>` writes it. (UTF-32's marks first: UTF-32 LE's
# starts with UTF-16 LE's.) Any other text is read as UTF-8.
UNICODE_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


STDIN = "-"     # --corpus -: the text comes from standard input (`cat *.txt | scratchrnn train --corpus -`)

# What a refusal of a text too large for memory says to do (check_text_memory's way_on): a text to train on whole,
# a text to score (evaluate) whole, or its start
TRAIN_START = ("train on its start: --max-tokens N reads it through once, for its vocabulary, and holds only its first "
               "N tokens")
SCORE_START = "score its start: --max-tokens N reads only as much of it as N tokens need"
SCORE_LESS = "a smaller --max-tokens reads less of it"
KEEP_LESS = "a smaller --max-tokens keeps less of it"
TO_UTF8 = "convert it to UTF-8 (iconv -f {} -t utf-8 FILE > NEW), whose start alone is read"
NO_LINE_ENDED = ("it is read in whole lines, and a line of it has not ended yet: break its lines first (fold -s -w "
                 "1000 FILE > NEW)")


def text_name(path):
    """A corpus file as a line names it: 'book.txt' quoted, or standard input."""
    return "standard input (--corpus -)" if str(path) == STDIN else repr(str(path))


WEB_ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)       # https://..., ftp://...


def check_not_web_address(path):
    """--corpus https://www.gutenberg.org/...txt said "corpus '/home/me/https:/www.gutenberg.org/...' does not exist"
    (resolved as a file's path): one line that says what to do."""
    if WEB_ADDRESS.match(str(path)):
        raise DataError(f"corpus {text_name(path)} is a web address, and --corpus reads files: download it first "
                        f"(curl -L -o book.txt {quoted(path)}), then give --corpus book.txt")


def read_text(path, digests=None, token="char", way_on=TRAIN_START):
    """Read a UTF-8 text file (or UTF-16/32 with its byte-order mark), refusing what is missing, empty,
    binary or not UTF-8 (one-line errors). The text comes back as `normalize` leaves it. digests: a dict where
    {path: file_digest of its bytes} is put, from the bytes read here (not a second reading of the file).
    A pipe is read as a file is (`--corpus <(zcat book.txt.gz)`), and STDIN is standard input's; their size, unknown
    before, is checked as they are read (TextPieces; `token` says how much memory a byte will take, `way_on` what to
    do where it is too much)."""
    if str(path) == STDIN or Path(path).is_fifo():
        pipe = TextPieces(path, token, way_on)
        try:
            pipe.read_to(math.inf)
        finally:
            pipe.close()
        raw, path = bytes(pipe.raw), pipe.path
        del pipe
    else:
        path = check_readable(path)
        try:
            raw = path.read_bytes()                                        # its size checked before reading
        except OSError as e:
            raise DataError(f"corpus {text_name(path)} cannot be read: {e.strerror}") from None
    if digests is not None:
        digests[str(path)] = file_digest(raw)
    return decode_text(raw, path)


def check_readable(path):
    """A corpus file's Path, or one line saying why it cannot be read: a web address, missing, a folder, not a file
    (a pipe is read as a file is)."""
    check_not_web_address(path)
    path = Path(path)
    if not path.exists():
        raise DataError(f"corpus {text_name(path)} does not exist")
    if path.is_dir():
        raise DataError(f"corpus {text_name(path)} is a folder, not a file; give the texts in it, e.g. --corpus "
                        f"{quoted(str(path).rstrip('/'))}/*.txt")
    if not (path.is_file() or path.is_fifo()):
        raise DataError(f"corpus {text_name(path)} is not a file")
    return path


def decode_text(raw, path, whole=True, offset=0):
    """The text of a file's bytes `raw` (all of them; whole=False: its start, cut after a line break; or a piece of
    whole lines at `offset` bytes into it), decoded and normalized, or one line saying why it is not text. An empty
    text is refused where it is whole."""
    encoding = next((name for bom, name in UNICODE_BOMS if raw.startswith(bom) and offset == 0), "utf-8")
    try:
        text = raw.decode(encoding)                                        # utf-16/32 drop their BOM here
    except UnicodeDecodeError as e:
        if offset == 0:                                                    # (a file starts so)
            check_not_compressed(raw, path)
        if encoding != "utf-8":
            raise DataError(f"corpus {text_name(path)} is not UTF-8 text, nor the {encoding.upper()} its byte-order "
                            f"mark announces (bad bytes at offset {e.start})") from None
        if b"\x00" in raw:
            raise DataError(f"corpus {text_name(path)} looks binary (it contains NUL bytes), not text") from None
        raise DataError(f"corpus {text_name(path)} is not UTF-8 text: {not_utf8(raw, e.start, offset)}") from None
    if "\x00" in text:
        if offset == 0:                                                    # (a file starts so)
            check_not_compressed(raw, path)
        raise DataError(f"corpus {text_name(path)} looks binary (it contains NUL bytes), not text")
    del raw
    text = normalize(text, start=offset == 0)                              # the byte-order mark dropped
    if whole and (not text or text.isspace()):                             # (isspace: no copy of the text)
        raise empty_text(path)
    return text


def empty_text(path):
    """The refusal of a file with no text (nothing, or blanks only)."""
    return EmptyText(f"corpus {text_name(path)} is empty", str(path))


UTF8_SAMPLE = 64 << 20          # the bytes not_utf8 counts the bad ones of (a whole 1 GB text: a second copy of it)


def not_utf8(raw, first, offset=0):
    """What a text that is not UTF-8 (its first bad byte at offset `first` of `raw`, `offset` bytes into the file) is,
    and the two ways on: another encoding converted (every accented letter of a Windows text is a bad byte), or a few
    damaged bytes dropped (a scraped text): it said only the first, which for a UTF-8 text with one damaged byte is
    wrong."""
    sample = raw[:UTF8_SAMPLE]
    bad = len(sample) - len(sample.decode("utf-8", errors="ignore").encode("utf-8"))
    if offset:
        where = f" in the {human_bytes(len(sample))} from offset {offset:,}"
    else:
        where = "" if len(sample) == len(raw) else f" in its first {human_bytes(len(sample))}"
    return (f"{bad:,} bad byte{'s' * (bad != 1)}{where} (the first at offset {offset + first:,}: "
            f"{raw[first:first + 1]!r}); "
            f"if it is in another encoding, convert it (iconv -f cp1252 -t utf-8 FILE > NEW for a Windows text); "
            f"if a few bytes are damaged, drop them (iconv -f utf-8 -t utf-8 -c FILE > NEW)")


# What a compressed text starts with, and what reads it (a text that is not UTF-8 is checked for them, to say so)
COMPRESSED = ((b"\x1f\x8b", "gzip", "zcat"), (b"\xfd7zXZ\x00", "xz", "xzcat"), (b"(\xb5/\xfd", "zstd", "zstdcat"),
              (b"BZh", "bzip2", "bzcat"), (b"PK\x03\x04", "zip", None))


def check_not_compressed(raw, path):
    """A compressed text (book.txt.gz) said it 'looks binary': one line says what it is, and how to read it."""
    for magic, name, reader in COMPRESSED:
        if raw.startswith(magic):
            if reader is None:
                raise DataError(f"corpus {text_name(path)} is a {name} archive, not text: unzip it and give the texts "
                                f"in it")
            how = (f"{reader} FILE | scratchrnn train --corpus - ..." if str(path) == STDIN else
                   f"read it through a pipe, --corpus <({reader} {quoted(path)}), or decompress it first")
            raise DataError(f"corpus {text_name(path)} is {name}-compressed, not text: {how}")


def standard_input():
    """Standard input's bytes (--corpus -), which must be a pipe or a file: a terminal would wait for a text typed in,
    with nothing said."""
    if sys.stdin is None or sys.stdin.isatty():
        raise DataError("--corpus - reads the text from standard input, which is a terminal here; pipe the text in: "
                        "cat book.txt | scratchrnn train --corpus - ...")
    return sys.stdin.buffer


STREAM_PIECE = 16 << 20         # a pipe is read this many bytes at a time, its size checked after each


# evaluate --max-tokens N reads only the start of its text that the first N tokens need (read_start): this many bytes
# first (or START_BYTES_PER_TOKEN a token, where more), and twice as many each time that falls short
START_BYTES = 1 << 20
START_BYTES_PER_TOKEN = 8


class TextPieces:
    """One corpus file, standard input or a pipe, read in pieces, the memory they will take checked after each with
    check_corpus_size's rule: a pipe's size no one knows before it is read (`zcat 20GB.txt.gz | scratchrnn train
    --corpus -` is refused in one line once it would not fit, not read whole first and the memory run out after);
    the start of a long text, read as far as its first tokens need (read_start: evaluate --max-tokens); a text read
    through in pieces of whole lines, one held at a time (pieces: train --max-tokens)."""

    def __init__(self, path, token, way_on=SCORE_LESS):
        self.path = STDIN if str(path) == STDIN else check_readable(path)     # (each checked before any is read)
        self.token, self.way_on, self.raw, self.ended, self.stream = token, way_on, bytearray(), False, None
        self.broken = False                                                # a line break read
        self.offset = 0                                                    # where raw starts in the text (pieces)

    def read_to(self, size):
        """Read on until `size` bytes are held or the text ends. A text in UTF-16 or UTF-32 (its byte-order mark),
        whose line breaks are not one byte, is read whole."""
        try:
            if self.stream is None and not self.ended:
                self.stream = standard_input() if self.path == STDIN else open(self.path, "rb")
            while not self.ended and len(self.raw) < size:
                piece = self.stream.read(min(size - len(self.raw), STREAM_PIECE))
                self.ended = not piece
                self.raw += piece
                self.broken = self.broken or b"\n" in piece or b"\r" in piece
                wide = next((name for bom, name in UNICODE_BOMS if self.raw.startswith(bom) and not self.offset), None)
                if wide and size < math.inf:                          # (a start can be read of UTF-8 only)
                    size, self.way_on = math.inf, TO_UTF8.format(wide)
                check_text_memory(len(self.raw), self.token, f"reading corpus {text_name(self.path)} (more than "
                                  f"{human_bytes(len(self.raw))} of text so far", self.way_on if size == math.inf
                                  or self.broken else NO_LINE_ENDED)
        except OSError as e:
            raise DataError(f"corpus {text_name(self.path)} cannot be read: {e.strerror}") from None

    def text(self):
        """Its text so far, as read_text reads a whole file: all of it once it has ended, else up to its last line
        break ('' before the first), as every charset reads each line on its own: those lines read as they do in
        the whole text."""
        if self.ended:
            return decode_text(bytes(self.raw), self.path)
        return decode_text(bytes(self.raw[:self.lines_end()]), self.path, whole=False)

    def lines_end(self):
        """Where the last line break read ends (0 before the first): a "\n", or a "\r" (an old Mac text's line break;
        a "\r\n" cut between its bytes gives the "\n" the whole text reads it as)."""
        return max(self.raw.rfind(b"\n"), self.raw.rfind(b"\r")) + 1

    def check_rest(self):
        """Before reading on: the line not yet ended is text too (its last character may be cut), or read_text's line
        for what it is (binary, not UTF-8) now, not after reading on for a line break that never comes."""
        try:
            rest = codecs.getincrementaldecoder("utf-8")().decode(bytes(self.raw[self.lines_end():]))
        except UnicodeDecodeError:
            rest = None
        if rest is None or "\x00" in rest:
            decode_text(bytes(self.raw), self.path, offset=self.offset)

    def pieces(self, last=True):
        """The whole text in turn, in pieces of whole lines (about STREAM_PIECE bytes each; a longer line is read to
        its end), each decoded and normalized as read_text reads it inside the whole text, so that the pieces joined
        are its text (a "\r\n" cut between two pieces is one "\n"). The last piece ends with a line break where
        `last` is False, as join_texts puts one between two files. One piece is held at a time: a text larger than the
        memory is read through (load_corpus: train --max-tokens counts the tokens of the whole text, for its
        vocabulary, and keeps its start). self.digest: file_digest of all its bytes, once the last piece is given."""
        digest, blank, after_cr, held = FileDigest(), True, False, ""
        while not self.ended:
            self.read_to(2 * len(self.raw) + max(STREAM_PIECE, 4))   # (a line unended: twice; a BOM whole)
            end = len(self.raw) if self.ended else self.lines_end()
            if end == 0:
                self.check_rest()                                   # (its line goes on: what it is said now)
                continue
            raw = bytes(self.raw[:end])
            del self.raw[:end]
            self.broken, skip = False, int(after_cr and raw.startswith(b"\n"))     # the "\n" of a cut "\r\n"
            after_cr = raw.endswith(b"\r")
            text = decode_text(raw[skip:], self.path, whole=False, offset=self.offset + skip)
            digest.update(raw)
            self.offset += len(raw)
            blank = blank and (not text or text.isspace())
            if text:                                                # (each given once the next is read)
                if held:
                    yield held
                held = text
        if blank:
            raise empty_text(self.path)
        self.digest = str(digest)
        yield held if last or held.endswith("\n") else held + "\n"

    def close(self):
        if self.stream is not None and self.path != STDIN:
            self.stream.close()


def read_start(paths, token, keep, wanted, digests=None):
    """(text, kept), as load_corpus reads them from whole files (keep(text): the text as its charset keeps it), from
    only as much of the start of `paths` (read in turn as one text) as its first `wanted` tokens need: START_BYTES,
    then twice as many until they give as many tokens after the charset, or the text ends. Those tokens are the whole
    text's first, as the lines read are whole. digests: as read_text's, for the files read to their end."""
    starts = [TextPieces(path, token) for path in paths]
    budget = max(START_BYTES, START_BYTES_PER_TOKEN * wanted)
    try:
        while True:
            texts, left = [], budget
            for start in starts:                       # the files in turn, to the first that has more than is read
                start.read_to(left)
                texts.append(start.text())
                if not start.ended:
                    break
                left -= len(start.raw)
            text = join_texts(texts)
            kept = keep(text)
            if all(start.ended for start in starts) or count_tokens(kept, token) >= wanted:
                break
            for start in starts:
                if not start.ended:
                    start.check_rest()
            budget *= 2
    finally:
        for start in starts:
            start.close()
    if digests is not None:
        digests.update((str(start.path), file_digest(start.raw)) for start in starts if start.ended)
    return text, kept


class TokenCounts:
    """A text's tokens counted as it is read through in pieces of whole lines (TextPieces.pieces), with what load_corpus
    tells of the whole text: how often each token comes and where first (the Vocab's order, and its ties), its
    characters and those its charset keeps (its note), and the pieces of its first `wanted` tokens, held: train
    --max-tokens N reads a text larger than the memory through for its vocabulary, and holds its start only."""

    def __init__(self, token, charset, sep, wanted):
        self.token, self.charset, self.wanted = token, charset, wanted
        self.sep = "" if charset == "raw" else sep               # what apply_charset puts between two pieces' lines
        self.characters = self.kept = self.marks = self.tokens = self.held = 0
        self.counts = np.zeros(0, dtype=np.int64)                # by code point (characters), by number (words)
        self.first = {}                                          # {code point: where it first comes}; {word: number}
        self.start = []                                          # the first tokens' pieces (characters: code points)

    def add(self, text, kept):
        """One more piece: its text (not empty), and what its charset keeps of it."""
        self.kept += len(kept) + (len(self.sep) if self.characters else 0)
        self.characters += len(text)
        self.marks += charset_marks(text, self.charset)
        if self.token == "char":
            ids = code_points(kept)
            counts = np.bincount(ids)
            if counts.size > self.counts.size:
                self.counts = np.concatenate([self.counts, np.zeros(counts.size - self.counts.size, np.int64)])
            new = np.flatnonzero((counts > 0) & (self.counts[:counts.size] == 0))
            if new.size:
                self.first.update((c, self.tokens + i) for c, i in first_positions(ids, new).items())
            self.counts[:counts.size] += counts
        else:
            ids = word_numbers(kept, self.first)
            self.counts = np.concatenate([self.counts, np.zeros(len(self.first) - self.counts.size, np.int64)])
            self.counts += np.bincount(ids, minlength=len(self.first))
        if self.tokens < self.wanted:
            self.start.append(ids if self.token == "char" else kept)
            self.held += len(text)
        self.tokens += ids.size

    def vocab(self, min_freq=1):
        """The book's Vocab of the text's tokens, as char_vocab and word_ids make it of the whole text."""
        if self.token == "char":
            return vocab_of_characters(self.counts, self.first, min_freq)
        return vocab_of_words(self.first, self.counts, min_freq)[1]

    def ids(self, vocab):
        """The ids of the text's first `wanted` tokens in `vocab`."""
        if self.token == "char":
            return char_ids(np.concatenate(self.start)[:self.wanted], vocab)
        return word_ids(" ".join(self.start), vocab)[0][:self.wanted]


def read_through(paths, token, keep, counted, digests=None, bar=None):
    """Read `paths` in turn as one text, through, in pieces of whole lines (TextPieces.pieces), each counted (counted: a
    TokenCounts) with what its charset keeps of it (keep); the memory of the start it holds checked as it grows.
    digests: as read_text's. bar: a progress bar (tqdm), told the bytes of each piece."""
    texts = [TextPieces(path, token, KEEP_LESS) for path in paths]     # (each checked before any is read)
    for i, text in enumerate(texts):
        try:
            read = 0                                                 # (the bytes the bar was told of)
            for piece in text.pieces(last=i == len(texts) - 1):
                held = counted.held
                counted.add(piece, keep(piece))
                if bar is not None:
                    bar.update(text.offset - read)
                    read = text.offset
                if counted.held > held:
                    check_text_memory(counted.held, token, f"keeping the first {counted.wanted:,} tokens of the text "
                                      f"(more than {human_bytes(counted.held)} of it so far", KEEP_LESS)
        finally:
            text.close()
        if digests is not None:
            digests[str(text.path)] = text.digest


def join_texts(texts):
    """The texts of several files as one: a line break put between two where the first does not end with one."""
    return "".join(t if i == len(texts) - 1 or t.endswith("\n") else t + "\n" for i, t in enumerate(texts))


def count_tokens(kept, token):
    """How many tokens a text (as its charset keeps it) gives."""
    return len(kept) if token == "char" else sum(1 for _ in WORD.finditer(kept))


def normalize(text, start=True):
    """One text, one sequence of characters: a leading byte-order mark dropped, "\r\n" (and a lone "\r")
    read as "\n", and Unicode NFC, so that "é" is one character whether the file wrote it composed or as
    "e" plus a combining accent (NFD). start: the text is a file's start (False: a piece of a file read in pieces,
    whose U+FEFF at its start is a character inside the text, not a byte-order mark)."""
    if start and text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


def preprocess_book(text):
    """The book's preprocessing: every run of non-letters becomes one space; lower case; one line each."""
    return [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in text.splitlines()]


def preprocess_wide(text):
    """A wider character set (an exercise): keep every printable character and the case; one line each."""
    return [" ".join(line.split()) for line in text.splitlines()]


def apply_charset(text, charset, sep=""):
    """The text as the charset keeps it, one string. book and wide join their lines with `sep`: nothing
    for characters, as the book does, a space for words; raw is the text itself, line breaks included."""
    if charset == "raw":
        return text
    if charset == "book":
        return sep.join(preprocess_book(text))
    if charset == "wide":
        return sep.join(preprocess_wide(text))
    raise DataError(f"unknown character set {charset!r}; choose one of {', '.join(CHARSETS)}")


def read_as_text(fragment, charset, sep=""):
    """A piece of text (a generation's prefix) read as a run's text was: normalized, then its charset, as if it
    stood inside the text. The charset drops the blanks at a line's ends; a fragment's ends are where the text goes
    on, so they are kept as the charset keeps a blank inside a line ('The  Time ' -> 'the time ' for book): a letter
    put at each end, which every charset keeps, stands for the text around it."""
    return apply_charset("x" + normalize(fragment) + "x", charset, sep)[1:-1]


def charset_loss(text, kept, charset):
    """How many of the text's characters the charset dropped or changed: for book every character that is
    not a lower-case letter or a space (upper-case letters, digits, punctuation, line breaks, other
    scripts); for wide the characters dropped (line breaks, repeated blanks) and tabs made spaces."""
    return loss_of(len(text), len(kept), charset_marks(text, charset), charset)


def charset_marks(text, charset):
    """What charset_loss counts in the text, which adds up over its pieces: for book the characters it keeps as they
    are (lower-case letters and spaces), for wide the tabs it makes spaces."""
    if charset == "book":
        return sum(text.count(c) for c in string.ascii_lowercase + " ")
    return text.count("\t") if charset == "wide" else 0


def loss_of(characters, kept, marks, charset):
    """charset_loss of a text of `characters` characters, `kept` of them kept by the charset, and its charset_marks."""
    if charset == "book":
        return characters - marks
    return max(0, characters - kept) + marks if charset == "wide" else 0


def tokenize(lines, token="char"):
    """Split each line into word or character tokens, as the book's `tokenize`."""
    if token == "char":
        return [list(line) for line in lines]
    if token == "word":
        return [line.split() for line in lines]
    raise DataError(f"unknown token type {token!r}; choose 'char' or 'word'")


class Vocab:
    """Tokens <-> ids. Ids follow frequency (most frequent first); '<unk>' is id 0 and catches the rest.

    Ties in frequency keep the order of first appearance, as `collections.Counter` does in the book.
    """

    def __init__(self, tokens=(), min_freq=0, reserved_tokens=(), idx_to_token=None, token="char"):
        if idx_to_token is not None:           # rebuilt from a checkpoint, or counted elsewhere
            self.idx_to_token = list(idx_to_token)
        else:
            if tokens and isinstance(tokens[0], list):
                tokens = [tok for line in tokens for tok in line]
            counter = collections.Counter(tokens)
            self.token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
            self.idx_to_token = ["<unk>"] + list(reserved_tokens)
            for tok, freq in self.token_freqs:
                if freq < min_freq:
                    break
                if tok not in self.idx_to_token:
                    self.idx_to_token.append(tok)
        self.token_to_idx = {tok: idx for idx, tok in enumerate(self.idx_to_token)}
        self.sep = "" if token == "char" else " "                         # how generated tokens are joined

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self[tok] for tok in tokens]

    def to_tokens(self, indices):
        if hasattr(indices, "__len__"):
            return [self.idx_to_token[int(i)] for i in indices]
        return self.idx_to_token[int(indices)]

    @property
    def unk(self):
        return 0

    def grown_by(self, other):
        """This vocabulary, then the tokens of `other` it lacks (in other's order) at its end: a trained model's ids
        stay as they were, and a text's new tokens get ids of their own (train --init-from)."""
        new = [tok for tok in other.idx_to_token[1:] if tok not in self.token_to_idx]
        return Vocab(idx_to_token=self.idx_to_token + new, token="char" if self.sep == "" else "word")


# ----------------------------------------------------------------------------------------------
# Characters to ids, in NumPy over the text's code points
# ----------------------------------------------------------------------------------------------

def code_points(text):
    """The text's characters as an array of Unicode code points (uint32), without a Python list."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def first_positions(codes, values):
    """{code point: position of its first occurrence} for each of `values` (all present in codes): a
    lookup table marks the ones still unseen, and each chunk of the text is searched only for those. The
    chunks start small and double, as most characters show up early."""
    unseen = np.zeros(int(codes.max()) + 1, dtype=bool)
    unseen[values] = True
    first, remaining, start, chunk = {}, len(values), 0, 1 << 12
    while remaining and start < len(codes):
        block = codes[start:start + chunk]
        hits = np.flatnonzero(unseen[block])
        if hits.size:
            found, at = np.unique(block[hits], return_index=True)
            for value, i in zip(found.tolist(), hits[at].tolist()):
                first[value] = start + i
            unseen[found] = False
            remaining -= len(found)
        start, chunk = start + chunk, min(chunk * 2, 1 << 24)
    return first


def char_vocab(codes, min_freq=1):
    """The book's Vocab of a text's characters: most frequent first, ties in order of first appearance; those seen
    fewer than min_freq times left out (read as '<unk>')."""
    counts = np.bincount(codes)
    return vocab_of_characters(counts, first_positions(codes, np.flatnonzero(counts >= max(min_freq, 1))), min_freq)


def vocab_of_characters(counts, first, min_freq=1):
    """char_vocab of the characters counted (counts: how often each code point comes; first: {code point: where it
    first comes}, for those seen min_freq times at least)."""
    present = np.flatnonzero(counts >= max(min_freq, 1))
    order = sorted(present.tolist(), key=lambda c: (-int(counts[c]), first[c]))
    return Vocab(idx_to_token=["<unk>"] + [chr(c) for c in order], token="char")


def char_ids(codes, vocab):
    """The ids of the characters (int64): a table from code point to id, '<unk>' (0) for those the
    vocabulary lacks."""
    known = {ord(tok): i for i, tok in enumerate(vocab.idx_to_token) if len(tok) == 1}
    size = max(int(codes.max()) if codes.size else 0, max(known, default=0)) + 1
    table = np.zeros(size, dtype=np.int64)
    table[list(known)] = list(known.values())
    return table[codes]


WORD = re.compile(r"\S+")                 # a word: what str.split() keeps (the same whitespace, Unicode's)


def word_ids(text, vocab=None, min_freq=1):
    """The text's words as ids (int64) and their vocabulary, without a list of the words (a Python string per word
    takes about 50 bytes, an id 8): the words are read one by one, each new one numbered in order of first appearance,
    then renumbered into the book's Vocab of them (most frequent first, ties in order of first appearance; a word
    '<unk>' is '<unk>'; words seen fewer than min_freq times are left out, '<unk>'). With a given vocabulary, its
    ids ('<unk>' for the words it lacks). -> (ids, vocab)."""
    if vocab is not None:
        known, unk = vocab.token_to_idx, vocab.unk
        return np.fromiter((known.get(m.group(), unk) for m in WORD.finditer(text)), dtype=np.int64), vocab
    seen = {}
    first = word_numbers(text, seen)
    rank, vocab = vocab_of_words(seen, np.bincount(first, minlength=len(seen)), min_freq)
    return rank[first], vocab


def word_numbers(text, seen):
    """The text's words, each as its number in order of first appearance (seen: {word: number}, filled as new words
    come; one dict for the pieces of one text)."""
    return np.fromiter((seen.setdefault(m.group(), len(seen)) for m in WORD.finditer(text)), dtype=np.int64)


def vocab_of_words(seen, counts, min_freq=1):
    """(rank, Vocab) of the words counted (seen: word_numbers's; counts: how often each number comes): the book's
    Vocab, and rank[number] the word's id in it."""
    words = list(seen)                                              # in order of first appearance
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] >= min_freq]
    order = order[[words[i] != "<unk>" for i in order]] if "<unk>" in seen else order
    rank = np.zeros(len(words), dtype=np.int64)                     # first-appearance number -> id ('<unk>': 0)
    rank[order] = np.arange(1, len(order) + 1)
    return rank, Vocab(idx_to_token=["<unk>"] + [words[i] for i in order], token="word")


# ----------------------------------------------------------------------------------------------
# A corpus: files -> ids and vocabulary
# ----------------------------------------------------------------------------------------------

def load_corpus(paths=None, max_tokens=10000, token="char", charset="book", vocab=None, report=None, min_freq=1,
                digests=None, grow=False, progress=None, scoring=False, known=None):
    """The book's `load_corpus_time_machine`, for any UTF-8 text files.

    paths: a path or a list of paths (None: the Time Machine), read in turn as one text (a line break is
    put between two files when the first does not end with one). The corpus is the flat array of token ids
    (int64), cut to `max_tokens` (the book's 10,000 characters; -1 or None keeps the whole text). With max_tokens
    (and not scoring), the text is read through in pieces of whole lines (read_through), its tokens counted for the
    vocabulary and only its first max_tokens held, so that a text larger than the memory trains on its start; read
    whole (-1), a text too large for the memory is refused before it is read, naming --max-tokens.
    vocab: None builds the vocabulary of the text, without the tokens seen fewer than `min_freq` times (the book's
    Vocab(min_freq); they are read as '<unk>'); a Vocab (a trained model's) maps the text onto it, and its tokens
    outside it to '<unk>'; with grow, the Vocab grown by the text's own tokens it lacks (seen min_freq times),
    at its end (Vocab.grown_by).
    report(line): told, in one line, what the user should know: a charset that drops or changes more than
    1% of a text given by path, how many tokens fell outside a given vocabulary or under min_freq, which tokens
    grew it. progress(line): told, before a long read (a text of READING_NOTE_BYTES or more), that it begins (none
    given: report).
    digests: a dict, filled with {path: file_digest} for each file given by path (none for the shipped book).
    scoring: the text is to be scored (evaluate), onto the given vocab: with max_tokens, only as much of its start
    as its first max_tokens tokens need is read (read_start), and digests has the files read to their end; a text
    too large for memory is refused with that way on.
    known: (the vocabulary's tokens, {path: file_digest}) that a run kept of this text (a resume): with max_tokens,
    where every file has that digest still (read through for it, which is quicker than counting its tokens), the
    vocabulary is the run's and only the text's start is read.
    Returns (corpus, vocab).
    """
    given, trained = paths is not None, vocab                         # trained: a model's vocabulary, or None
    vocab_given = trained is not None and not grow                    # the text is read onto it as it is
    if paths is None:
        paths = [TIME_MACHINE]
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    if token not in TOKENS:
        raise DataError(f"unknown token type {token!r}; choose 'char' or 'word'")
    if sum(str(p) == STDIN for p in paths) > 1:
        raise DataError("--corpus - (standard input) is given more than once, and can be read once")
    start_only = scoring and vocab_given and max_tokens is not None and max_tokens > 0
    through = not scoring and max_tokens is not None and max_tokens > 0     # read through, its first tokens held
    progress = progress or report
    size = corpus_bytes(paths) if through else 0
    if through and known and given and progress is not None and size >= READING_NOTE_BYTES:
        progress(f"checking that the {human_bytes(size)} of text are the run's, by their digests")
    runs_text = through and known is not None and unchanged(paths, known[1])   # a resume's text: the run's digests
    if runs_text:                                                           # (its vocabulary too, then: the start)
        vocab, through, start_only, size = Vocab(idx_to_token=known[0], token=token), False, True, 0
        if digests is not None and given:
            digests.update(zip(map(str, paths), known[1].values()))
    too_large = SCORE_START if scoring else TRAIN_START                   # (the way on of a whole text's refusal)
    if not (start_only or through):
        size = check_corpus_size(paths, token, too_large)
    first_named = {}                                                 # each file, as the user first named it
    for p in paths:
        first_named.setdefault(Path(p).resolve(), []).append(p)
    repeated = [named[0] for named in first_named.values() if len(named) > 1]
    if report is not None and given and repeated:                    # a glob and a name that it matches, say
        report(f"note: {', '.join(map(str, repeated))} given more than once, and read each time (the files of "
               f"--corpus are read in turn as one text)")
    if progress is not None and given and size >= READING_NOTE_BYTES:
        progress(f"reading {human_bytes(size)} of text" + (f", all of it for its vocabulary, its first {max_tokens:,} "
                                                           f"tokens to train on" if through else ""))
    sep = "" if token == "char" else " "
    keep = lambda text: apply_charset(text, charset, sep)                                    # noqa: E731
    if through:
        counted = TokenCounts(token, charset, sep, max_tokens)
        with tqdm(total=size or None, desc="reading", unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                  disable=not (given and size >= READING_NOTE_BYTES and sys.stderr.isatty())) as bar:
            read_through(paths, token, keep, counted, digests if given else None, bar)
        characters, lost = counted.characters, loss_of(counted.characters, counted.kept, counted.marks, charset)
    else:
        if start_only:
            text, kept = read_start(paths, token, keep, max_tokens, digests if given else None)
        else:
            texts = [read_text(p, digests if given else None, token, too_large) for p in paths]
            text = join_texts(texts)
            del texts
            kept = keep(text)
        characters, lost = len(text), charset_loss(text, kept, charset)
        del text
    if report is not None and given and lost > CHARSET_LOSS_WARNING * characters:
        way_on = ("--charset raw keeps every character as written" if trained is None else   # (the run's reading)
                  "the model's run read its text so (a new run with --charset raw keeps every character as written)")
        of = f"the {characters:,} characters read of the text" if start_only else \
            f"the text's {characters:,} characters"
        report(f"note: --charset {charset} drops or changes {lost:,} of {of} ({lost / characters:.1%}); {way_on}")
    names = ", ".join("standard input" if str(p) == STDIN else str(p) for p in paths)     # ("corpus -" said)
    if charset == "raw":
        hint = ""
    elif trained is None:
        hint = "; --charset raw keeps every character"
    else:                                                            # (the run's reading: evaluate, --init-from)
        hint = ", as the model's run read its own text"
    none_left = DataError(f"corpus {names} has no tokens left after preprocessing with --charset {charset}{hint}")
    if through:
        if counted.tokens == 0:
            raise none_left
        if not vocab_given:
            own = counted.vocab(min_freq)
            vocab = trained.grown_by(own) if grow else own
        corpus, tokens, kept_characters = counted.ids(vocab), counted.tokens, counted.kept
    elif token == "char":
        codes = code_points(kept)
        del kept
        if codes.size == 0:
            raise none_left
        if not vocab_given and not runs_text:
            own = char_vocab(codes, min_freq)
            vocab = trained.grown_by(own) if grow else own
        corpus = char_ids(codes, vocab)
    else:
        if grow:              # (the text read twice: a token rare in it, under min_freq, keeps its trained id)
            vocab = trained.grown_by(word_ids(kept, None, min_freq)[1])
        corpus, vocab = word_ids(kept, vocab, min_freq)
        tokens, kept_characters = corpus.size, len(kept)
        del kept
        if corpus.size == 0:
            raise none_left
    if token == "word" and report is not None and kept_characters > LONG_WORD_CHARACTERS * tokens:
        report(f"note: --tokens word splits the text at blanks, and {names} has {tokens:,} word{'s' * (tokens != 1)} "
               f"in {kept_characters:,} characters, {kept_characters / tokens:,.0f} a word (a language written "
               f"without spaces, as Chinese or Japanese, is read a line or a sentence a word); --tokens char reads it "
               f"character by character")
    if max_tokens is not None and max_tokens > 0:
        corpus = corpus[:max_tokens]
    unknown = int(np.count_nonzero(corpus == vocab.unk)) if vocab_given or min_freq > 1 else 0
    if unknown == len(corpus) and vocab_given:     # nothing a model of this vocabulary could learn from
        read = "would be read as <unk>); a text in other characters or words wants a run of its own"
        if len(corpus) == 1:
            raise DataError(f"the one token of corpus {names} is not in the model's vocabulary of {len(vocab)} (it "
                            f"{read}")
        raise DataError(f"none of the {len(corpus):,} tokens of corpus {names} is in the model's vocabulary of "
                        f"{len(vocab)} (all {read}")
    if unknown == len(corpus):
        raise DataError(f"no token of corpus {names} is seen {min_freq} times (--min-freq {min_freq}): all would be "
                        f"read as <unk>; lower --min-freq")
    share = f"{unknown:,} of the {len(corpus):,} tokens ({unknown / len(corpus):.1%})"
    if report is not None and grow and len(vocab) > len(trained):
        new = vocab.idx_to_token[len(trained):]
        report(f"note: {len(new):,} tokens new to the model's vocabulary of {len(trained)} are added to it, with "
               f"fresh weights: {' '.join(map(repr, new[:12]))}{' ...' if len(new) > 12 else ''}")
    if report is not None and unknown and vocab_given:
        report(f"note: {share} are not in the model's vocabulary of {len(vocab)} and are read as <unk>")
    elif report is not None and unknown:
        report(f"note: --min-freq {min_freq} reads {share} as <unk>; the vocabulary keeps {len(vocab) - 1:,} and <unk>")
    return corpus, vocab


def check_corpus_size(paths, token, way_on=TRAIN_START):
    """Refuse, in one line and before reading them, files whose text would not fit in this machine's memory, where
    they are read whole (train --max-tokens -1, evaluate without --max-tokens). Returns their size in bytes."""
    size = corpus_bytes(paths)
    check_text_memory(size, token, f"reading corpus {', '.join(map(str, paths))} ({human_bytes(size)} of text", way_on)
    return size


def unchanged(paths, digests):
    """Whether the files `paths` are, in turn, those whose file_digest are the values of `digests` (a pipe or standard
    input, which can be read once, is not: it is read through)."""
    if not digests or len(digests) != len(paths) or any(str(p) == STDIN or not Path(p).is_file() for p in paths):
        return False
    then = list(digests.values())
    if any(int(digest.split(":")[0]) != Path(p).stat().st_size for p, digest in zip(paths, then)):
        return False                                                       # (a size that differs: no need to read)
    return all(file_digest_of(p) == digest for p, digest in zip(paths, then))


def corpus_bytes(paths):
    """The size of the files among `paths`, in bytes (a pipe's and standard input's are not known before reading)."""
    return sum(Path(p).stat().st_size for p in paths if Path(p).is_file())


def check_text_memory(size, token, what, way_on):
    """One line where `size` bytes of text (`what` names them, up to the memory per byte) would not fit in memory,
    with what to do (`way_on`: TRAIN_START, SCORE_START, SCORE_LESS, KEEP_LESS, TO_UTF8's or NO_LINE_ENDED)."""
    per_byte = LOAD_BYTES_PER_BYTE[token]
    check_memory(per_byte * size, "cpu", f"{what}, {per_byte} bytes of memory per byte of it)",
                 f"; {way_on}")


def file_digest(raw):
    """'bytes:hex': a file's size and a digest of its bytes (BLAKE2b, 128 bits), kept for each corpus file in a run's
    checkpoint beside corpus_digest (read_text puts them in load_corpus's `digests`), so that a resume refused for a
    changed text can say which file changed."""
    return digest_of_pieces([raw])


def file_digest_of(path):
    """file_digest of a file read in pieces (a long one of which evaluate --max-tokens read the start only)."""
    with open(path, "rb") as file:
        return digest_of_pieces(iter(lambda: file.read(STREAM_PIECE), b""))


def digest_of_pieces(pieces):
    """file_digest of the bytes of `pieces`, in turn."""
    digest = FileDigest()
    for piece in pieces:
        digest.update(piece)
    return str(digest)


class FileDigest:
    """file_digest taken as a file's bytes come (update, piece by piece): 'bytes:hex', as str()."""

    def __init__(self):
        self.hash, self.size = hashlib.blake2b(digest_size=16), 0

    def update(self, piece):
        self.hash.update(piece)
        self.size += len(piece)

    def __str__(self):
        return f"{self.size}:{self.hash.hexdigest()}"


def corpus_digest(corpus):
    """'N:hex': the corpus's token count and a digest of its ids (BLAKE2b, 128 bits), which a run keeps in its
    checkpoint so that a resume can tell that it trains on the same text (bit-exact resume needs it)."""
    ids = np.ascontiguousarray(corpus, dtype=np.int64)
    return f"{len(ids)}:{hashlib.blake2b(memoryview(ids).cast('B'), digest_size=16).hexdigest()}"


# ----------------------------------------------------------------------------------------------
# Minibatches: the book's two ways to cut a long sequence into (batch_size, num_steps) pieces
# ----------------------------------------------------------------------------------------------

def seq_data_iter_random(corpus, batch_size, num_steps, rng):
    """Random sampling: subsequences start at random places; neighbouring minibatches are unrelated,
    so the hidden state is re-initialised for every minibatch."""
    corpus = corpus[rng.integers(0, num_steps):]          # random offset in [0, num_steps - 1]
    num_subseqs = (len(corpus) - 1) // num_steps
    initial_indices = np.arange(0, num_subseqs * num_steps, num_steps)
    rng.shuffle(initial_indices)
    num_batches = num_subseqs // batch_size
    for i in range(0, batch_size * num_batches, batch_size):
        starts = initial_indices[i:i + batch_size]
        X = np.stack([corpus[j:j + num_steps] for j in starts])          # (B, T)
        Y = np.stack([corpus[j + 1:j + 1 + num_steps] for j in starts])  # (B, T)
        yield X, Y


def seq_data_iter_sequential(corpus, batch_size, num_steps, rng):
    """Sequential partitioning: row b of minibatch i+1 continues row b of minibatch i, so the hidden
    state is carried across minibatches (and detached: truncated BPTT)."""
    offset = int(rng.integers(0, num_steps + 1))          # random offset in [0, num_steps]
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = corpus[offset:offset + num_tokens].reshape(batch_size, -1)
    Ys = corpus[offset + 1:offset + 1 + num_tokens].reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        yield Xs[:, i:i + num_steps], Ys[:, i:i + num_steps]


class SeqDataLoader:
    """An iterable over minibatches, re-cut at random every epoch from its own seeded generator."""

    def __init__(self, corpus, batch_size=32, num_steps=35, use_random_iter=False, seed=0):
        if batch_size < 1 or num_steps < 1:
            raise DataError(f"batch size and steps must be positive (got {batch_size}, {num_steps})")
        self.corpus = np.asarray(corpus, dtype=np.int64)
        self.batch_size, self.num_steps = batch_size, num_steps
        self.use_random_iter = use_random_iter
        self.rng = np.random.default_rng(seed)
        self.check_length(len(self.corpus), batch_size, num_steps)

    @staticmethod
    def tokens_needed(batch_size, num_steps):
        """The shortest corpus that gives one minibatch, whatever the random offset: B*T tokens and one more for
        the targets, after an offset of up to T."""
        return batch_size * num_steps + num_steps + 1

    @classmethod
    def check_length(cls, tokens, batch_size, num_steps, trained=None):
        """A DataError where a corpus of `tokens` tokens is too short for one minibatch, with the sizes that fit the
        `trained` tokens of it (a validation text held out, the rest; none given: all)."""
        need = cls.tokens_needed(batch_size, num_steps)
        if tokens < need:
            fit = cls.sizes_that_fit(tokens if trained is None else trained, num_steps)
            raise DataError(f"corpus has {tokens:,} token{'s' * (tokens != 1)}, too short for one minibatch of "
                            f"{batch_size} x {num_steps} (needs at least {need:,}); use a longer text"
                            + (f", or {fit}" if fit else ": a minibatch needs 3 tokens at the least (one to read, "
                                                         "one to predict, one to start at)"))

    @staticmethod
    def longest_steps(tokens, batch_size):
        """The most --num-steps with which `tokens` tokens give one minibatch of `batch_size` rows (tokens_needed,
        solved for the steps: the rows, an offset of as many steps, and one)."""
        return (tokens - 1) // (batch_size + 1)

    @classmethod
    def sizes_that_fit(cls, tokens, num_steps):
        """The flags with which `tokens` tokens, too few for a run's minibatch, give one: the most rows of its
        --num-steps (--batch-size), else one row of the most steps; None where not even that (3 tokens)."""
        rows = (tokens - num_steps - 1) // num_steps
        if rows >= 1:
            return f"--batch-size {rows} (the most that fit at --num-steps {num_steps})"
        steps = cls.longest_steps(tokens, 1)
        return f"--batch-size 1 --num-steps {steps} (the most that fit in one row)" if steps >= 1 else None

    def batches_per_epoch(self):
        """About how many minibatches an epoch has (the random offset can take one away)."""
        return max(1, (len(self.corpus) - self.num_steps - 1) // (self.batch_size * self.num_steps))

    def __iter__(self):
        make = seq_data_iter_random if self.use_random_iter else seq_data_iter_sequential
        return make(self.corpus, self.batch_size, self.num_steps, self.rng)
