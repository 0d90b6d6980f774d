"""Stream frames from LAMMPS text dumps (plain or gzip), one frame at a time.

Supported: ``dump custom`` with ``id`` and ``type`` and/or ``element``, and
coordinates as unwrapped ``xu yu zu``, wrapped ``x y z`` (with image flags
``ix iy iz`` when present), scaled ``xs ys zs`` or scaled-unwrapped
``xsu ysu zsu``. Orthogonal, restricted triclinic (``xy xz yz``) and general
triclinic (``abc origin``) boxes; the box may change from frame to frame.

A last frame cut short (a run killed while writing) is dropped with a
warning; anything else that does not parse raises :class:`InputError`
naming the file and the line.

Speed: after one frame has been parsed line by line, the following frames with
the same layout (atom count, box and ATOMS header, atom ids and types) are read
in batches of whole frames and their numbers parsed by pandas' C reader (or
NumPy's when pandas is missing); any frame that differs, or does not parse, is
re-read by the line-by-line parser, which names the line at fault. Memory is
bounded by the batch (about ``BATCH_LINES`` atom lines).
"""

from __future__ import annotations

import gzip
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from ionmd.errors import InputError

COORD_SETS = (("xu", "yu", "zu"), ("x", "y", "z"), ("xsu", "ysu", "zsu"), ("xs", "ys", "zs"))
BATCH_LINES = 100_000  # atom lines parsed together by the fast path (bounds its memory)


@dataclass
class DumpFrame:
    """One frame of a dump, all atoms, sorted by id.

    Attributes
    ----------
    timestep : int
        The MD step number of the frame.
    cell_A : ndarray (3, 3)
        Cell vectors as rows, Å.
    origin_A : ndarray (3,)
        Lower corner of the box, Å.
    ids, types : ndarray (n_atoms,)
        Atom ids and types (types are 0 when the dump has no type column).
    elements : ndarray of str or None
        The ``element`` column when present.
    positions_A : ndarray (n_atoms, 3)
        Cartesian positions, Å; unwrapped when ``unwrapped`` is true.
    unwrapped : bool
        True for ``xu``/``xsu`` columns or wrapped positions with image flags.
    line : int
        Line number of the frame's ``ITEM: TIMESTEP``.
    """

    timestep: int
    cell_A: np.ndarray
    origin_A: np.ndarray
    ids: np.ndarray
    types: np.ndarray
    elements: np.ndarray | None
    positions_A: np.ndarray
    unwrapped: bool
    line: int
    has_timestep: bool = True


class _Truncated(Exception):
    pass


def open_text(path: str | Path) -> TextIO:
    """Open a text file, transparently gunzipping ``*.gz``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"dump file '{path}' does not exist")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt")
    return open(path)


def _box_from_lines(header: str, rows: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Convert the three BOX BOUNDS lines to (cell rows, origin)."""
    tok = header.split()[3:]
    if tok and tok[0] == "abc":
        cell = np.array([r[:3] for r in rows], dtype=float)
        origin = np.array([r[3] for r in rows], dtype=float)
        return cell, origin
    b = np.array(rows, dtype=float)
    if tok and tok[0] == "xy":
        xy, xz, yz = b[0, 2], b[1, 2], b[2, 2]
        xlo = b[0, 0] - min(0.0, xy, xz, xy + xz)
        xhi = b[0, 1] - max(0.0, xy, xz, xy + xz)
        ylo = b[1, 0] - min(0.0, yz)
        yhi = b[1, 1] - max(0.0, yz)
        zlo, zhi = b[2, 0], b[2, 1]
    else:
        xy = xz = yz = 0.0
        (xlo, xhi), (ylo, yhi), (zlo, zhi) = b[0, :2], b[1, :2], b[2, :2]
    cell = np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]])
    return cell, np.array([xlo, ylo, zlo])


class _ByteReader:
    """Buffered binary reader: text lines for the line-by-line parser, raw byte blocks for the fast path.

    A read error (a damaged gzip stream) is kept and raised once the bytes read before it are used up.
    """

    def __init__(self, raw) -> None:
        self.raw = raw
        self.buf = b""
        self.pos = 0
        self.eof = False
        self.error: BaseException | None = None

    def fill_to(self, n_bytes: int) -> bool:
        """Read until ``n_bytes`` are buffered past ``pos`` (or the end); False if nothing was added."""
        parts = [self.buf[self.pos :]]
        have = len(parts[0])
        added = False
        while have < n_bytes and not self.eof:
            try:
                data = self.raw.read1(max(1 << 16, n_bytes - have))
            except (OSError, EOFError) as exc:
                self.error, self.eof = exc, True
                break
            if not data:
                self.eof = True
                break
            parts.append(data)
            have += len(data)
            added = True
        self.buf, self.pos = b"".join(parts), 0
        return added

    def readline(self) -> str:
        """The next line with its newline; '' at the end (raises a kept read error instead)."""
        while True:
            i = self.buf.find(b"\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos : i + 1]
                self.pos = i + 1
                return line.decode()
            if not self.fill_to(len(self.buf) - self.pos + (1 << 20)):
                if self.error is not None:
                    err, self.error = self.error, None
                    raise err
                line = self.buf[self.pos :]
                self.pos = len(self.buf)
                return line.decode()


def _open_binary(path: Path):
    if not path.is_file():
        raise InputError(f"dump file '{path}' does not exist")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def iter_dump(path: str | Path, formats_hint: str | None = None, fast: bool = True) -> Iterator[DumpFrame]:
    """Yield the frames of a LAMMPS text dump one at a time.

    Parameters
    ----------
    formats_hint : str, optional
        The formats a caller accepts, named in the error when the file is not a LAMMPS dump.
    fast : bool
        Use the batched fast path (see the module docstring); False parses line by line.

    Raises
    ------
    InputError
        If the file is missing or a line does not parse (the message names the file and line).
    """
    path = Path(path)
    raw = _open_binary(path)
    rd = _ByteReader(raw)
    state = {"n": 0, "slow_frames": 0}

    def next_line(required: bool = True) -> str | None:
        line = rd.readline()
        if not line:
            if required:
                raise _Truncated
            return None
        state["n"] += 1
        return line

    def next_lines(n: int) -> list[str]:
        lines = []
        for _ in range(n):
            line = rd.readline()
            if not line:
                break
            lines.append(line)
        state["n"] += len(lines)
        if len(lines) < n:
            raise _Truncated
        return lines

    cache: dict = {}

    def fail(msg: str, line: int | None = None) -> InputError:
        return InputError(f"dump file '{path}' line {line or state['n']}: {msg}")

    n_frames = 0
    with raw:
        while True:
            try:
                if fast and "tmpl" in cache and state["slow_frames"] <= 0:
                    frames, n_bad = _fast_frames(rd, cache["tmpl"], state["n"])
                    if frames:
                        state["n"] += len(frames) * cache["tmpl"]["frame_lines"]
                        for fr in frames:
                            n_frames += 1
                            yield fr
                        continue
                    state["slow_frames"] = max(1, n_bad)  # re-read these frames line by line
                line = next_line(required=False)
            except EOFError as exc:  # gzip stream cut after a complete frame
                warnings.warn(f"dump file '{path}': stream ends early after line {state['n']} ({exc})",
                              stacklevel=2)
                break
            except OSError as exc:
                raise InputError(f"dump file '{path}': cannot read: {exc}") from exc
            if line is None:
                break
            if not line.strip():
                continue
            start = state["n"]
            if n_frames == 0 and formats_hint and not line.startswith("ITEM:"):
                raise fail(f"expected 'ITEM: TIMESTEP', found '{line.strip()[:60]}': this is not a LAMMPS "
                           f"text dump. Readable formats: {formats_hint}")
            try:
                frame = _read_frame(line, next_line, next_lines, fail, start, cache)
            except _Truncated:
                warnings.warn(
                    f"dump file '{path}': the last frame (starting at line {start}) is truncated and was dropped",
                    stacklevel=2,
                )
                break
            except (OSError, EOFError) as exc:  # corrupt gzip stream
                warnings.warn(f"dump file '{path}': stream ends early after line {state['n']} ({exc}); "
                              "the last frame was dropped", stacklevel=2)
                break
            state["slow_frames"] -= 1
            n_frames += 1
            yield frame
    if n_frames == 0:
        raise InputError(f"dump file '{path}' contains no complete frame")


def _parse_block(data: bytes, usecols: list[int], n_rows: int, ncol: int) -> np.ndarray | None:
    """Numbers of the ``usecols`` columns of ``n_rows`` whitespace-separated rows, or None if they do not parse."""
    try:
        import pandas as pd
    except ImportError:  # NumPy's parser: all columns must be numeric
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.fromstring(data.decode(), sep=" ")  # noqa: NPY201 - the text mode is not deprecated
        if arr.size != n_rows * ncol:
            return None
        return arr.reshape(n_rows, ncol)[:, usecols]
    for sep in (" ", r"\s+"):  # single spaces (LAMMPS' own format, maybe a trailing one), then any
        try:
            df = pd.read_csv(io.BytesIO(data), sep=sep, header=None, engine="c")
        except Exception:  # noqa: BLE001 - any parse problem goes to the line-by-line reader
            continue
        if df.shape[1] == ncol + 1 and df.iloc[:, ncol].isna().all():
            df = df.iloc[:, :ncol]  # the trailing space LAMMPS writes after the last column
        if df.shape != (n_rows, ncol):
            continue
        try:
            arr = df.iloc[:, usecols].to_numpy(dtype=float)
        except (TypeError, ValueError):
            continue
        if np.isfinite(arr).all():  # short lines read as NaN, or 'nan' in the file: line by line
            return arr
    return None


def _fast_frames(rd: _ByteReader, t: dict, start: int) -> tuple[list[DumpFrame], int]:
    """Parse whole frames of the template's layout at the reader's position.

    Returns the frames (the reader advanced past them) and, when none could be parsed, how many
    frames the line-by-line reader should take over (the reader is then left where it was).
    """
    n = t["n_atoms"]
    target = t["batch_bytes"]
    while True:
        if len(rd.buf) - rd.pos < target:
            rd.fill_to(target)
        buf, p = rd.buf, rd.pos
        steps, boxes, bodies, frame_ends = [], [], [], []
        need_more = False
        while len(steps) < t["batch_frames"]:
            ends, q = [], p
            for _ in range(9):
                e = buf.find(b"\n", q)
                if e < 0:
                    break
                ends.append(e)
                q = e + 1
            if len(ends) < 9:
                need_more = not rd.eof
                break
            lines = [buf[a + 1 : e + 1] for a, e in zip([p - 1, *ends[:-1]], ends, strict=True)]
            if not (lines[0].startswith(b"ITEM: TIMESTEP") and lines[2].startswith(b"ITEM: NUMBER OF ATOMS")
                    and lines[4] == t["box_header_b"] and lines[8] == t["atoms_line_b"]):
                break
            body_start = ends[8] + 1
            nxt = buf.find(b"ITEM:", body_start)
            if nxt < 0:
                if not rd.eof:
                    need_more = True
                    break
                nxt = len(buf)
            body = buf[body_start:nxt]
            if body.count(b"\n") != n or not body.endswith(b"\n"):
                break
            try:
                if int(lines[3]) != n:
                    break
                steps.append(int(lines[1]))
                boxes.append([[float(x) for x in lines[5 + k].split()] for k in range(3)])
            except ValueError:
                break
            bodies.append(body)
            frame_ends.append(nxt)
            p = nxt
        if not steps and need_more and len(rd.buf) - rd.pos >= target:
            target *= 2  # a frame larger than the batch: read more
            continue
        break
    g = len(steps)
    if g == 0:
        return [], 1
    arr = _parse_block(b"".join(bodies), t["usecols"], g * n, t["ncol"])
    if arr is None:
        return [], g
    arr = arr.reshape(g, n, len(t["usecols"]))
    ok = (arr[:, :, 0] == t["raw_ids"]).all(axis=1)
    if t["raw_types"] is not None:
        ok &= (arr[:, :, 1] == t["raw_types"]).all(axis=1)
    if not ok.all():
        g = int(np.argmin(ok))
        if g == 0:
            return [], 1
    frames = []
    pos_cols = t["pos_cols"]
    fl = t["frame_lines"]
    for j in range(g):
        cell, origin = _box_from_lines(t["box_header"], boxes[j])
        xyz = arr[j][:, pos_cols[:3]]
        if t["scaled"]:
            xyz = origin + xyz @ cell
        if len(pos_cols) == 6:
            xyz = xyz + arr[j][:, pos_cols[3:]] @ cell
        if t["order"] is not None:
            xyz = xyz[t["order"]]
        frames.append(DumpFrame(steps[j], cell, origin, t["ids"], t["types"], t["elements"], xyz, t["unwrapped"],
                                start + j * fl + 1))
    rd.pos = frame_ends[g - 1]
    return frames, 0


def _read_frame(first: str, next_line, next_lines, fail, start: int, cache: dict) -> DumpFrame:
    if not first.startswith("ITEM: TIMESTEP"):
        raise fail(f"expected 'ITEM: TIMESTEP', found '{first.strip()[:60]}'")
    line = next_line()
    try:
        timestep = int(line.split()[0])
    except (ValueError, IndexError):
        if not line.endswith("\n"):
            raise _Truncated from None
        raise fail(f"timestep '{line.strip()}' is not an integer") from None
    line = next_line()
    if not line.startswith("ITEM: NUMBER OF ATOMS"):
        raise fail(f"expected 'ITEM: NUMBER OF ATOMS', found '{line.strip()[:60]}'")
    line = next_line()
    try:
        n_atoms = int(line.split()[0])
    except (ValueError, IndexError):
        if not line.endswith("\n"):
            raise _Truncated from None
        raise fail(f"number of atoms '{line.strip()}' is not an integer") from None
    box_header = next_line()
    if not box_header.startswith("ITEM: BOX BOUNDS"):
        raise fail(f"expected 'ITEM: BOX BOUNDS', found '{box_header.strip()[:60]}'")
    rows = []
    for _ in range(3):
        line = next_line()
        try:
            rows.append([float(t) for t in line.split()])
            if len(rows[-1]) < 2:
                raise ValueError
        except ValueError:
            if not line.endswith("\n"):
                raise _Truncated from None
            raise fail(f"box bounds line '{line.strip()}' is not numbers") from None
    cell, origin = _box_from_lines(box_header, rows)
    line = next_line()
    if not line.startswith("ITEM: ATOMS"):
        raise fail(f"expected 'ITEM: ATOMS', found '{line.strip()[:60]}'")
    atoms_line = line
    columns = line.split()[2:]
    if not line.endswith("\n"):
        raise _Truncated
    col = {name: k for k, name in enumerate(columns)}
    if "id" not in col:
        raise fail("the ATOMS line has no 'id' column; dump with 'id type element xu yu zu'")
    coords = next((c for c in COORD_SETS if all(n in col for n in c)), None)
    if coords is None:
        raise fail(f"the ATOMS line has no coordinate columns (xu yu zu, x y z, xs ys zs), only {columns}")
    ncol = len(columns)
    body_start = start + 9
    lines = next_lines(n_atoms)
    if lines and not lines[-1].endswith("\n") and len(lines[-1].split()) != ncol:
        raise _Truncated  # the file ends in the middle of an atom line
    tokens = "".join(lines).split()
    if len(tokens) != n_atoms * ncol:
        for k, ln in enumerate(lines):
            if ln.startswith("ITEM:"):
                raise fail(
                    f"the frame at timestep {timestep} declares {n_atoms} atoms but has only {k} atom lines "
                    f"before the next header '{ln.strip()[:40]}' (line {body_start + k}): atoms are missing",
                    start,
                )
            if len(ln.split()) != ncol:
                raise fail(
                    f"expected {ncol} columns ({' '.join(columns)}), found {len(ln.split())}",
                    body_start + k,
                )

    def numeric(name: str, dtype=float) -> np.ndarray:
        vals = tokens[col[name] :: ncol]
        try:
            return np.array(vals, dtype=dtype)
        except ValueError:
            for k, v in enumerate(vals):
                try:
                    dtype(v)
                except ValueError:
                    raise fail(f"column '{name}' value '{v}' is not a number", body_start + k) from None
            raise

    # ids, types and elements rarely change between frames of a sorted dump: reuse them
    id_tok = tokens[col["id"] :: ncol]
    type_tok = tokens[col["type"] :: ncol] if "type" in col else None
    if cache.get("columns") == columns and cache.get("id_tok") == id_tok and cache.get("type_tok") == type_tok:
        ids, types, elements, order = cache["ids"], cache["types"], cache["elements"], cache["order"]
    else:
        ids = numeric("id", int)
        types = numeric("type", int) if "type" in col else np.zeros(n_atoms, dtype=int)
        elements = np.array(tokens[col["element"] :: ncol]) if "element" in col else None
        order = np.argsort(ids, kind="stable")
        if np.all(order == np.arange(n_atoms)):
            order = None
        else:
            ids, types = ids[order], types[order]
            if elements is not None:
                elements = elements[order]
        cache.update(columns=columns, id_tok=id_tok, type_tok=type_tok, ids=ids, types=types,
                     elements=elements, order=order)
    xyz = np.stack([numeric(c) for c in coords], axis=1)
    unwrapped = coords[0] in ("xu", "xsu")
    if coords[0] in ("xs", "xsu"):
        xyz = origin + xyz @ cell
    if coords[0] in ("x", "xs") and all(n in col for n in ("ix", "iy", "iz")):
        images = np.stack([numeric(c) for c in ("ix", "iy", "iz")], axis=1)
        xyz = xyz + images @ cell
        unwrapped = True
    if order is not None:
        xyz = xyz[order]
    images_used = coords[0] in ("x", "xs") and all(n in col for n in ("ix", "iy", "iz"))
    if cache.get("tmpl_key") != (n_atoms, box_header, atoms_line, tuple(id_tok)):
        usecols = [col["id"]] + ([col["type"]] if "type" in col else [])
        k0 = len(usecols)
        usecols += [col[c] for c in coords] + ([col[c] for c in ("ix", "iy", "iz")] if images_used else [])
        raw_order = np.argsort(order) if order is not None else None
        cache["tmpl_key"] = (n_atoms, box_header, atoms_line, tuple(id_tok))
        cache["tmpl"] = {
            "n_atoms": n_atoms, "frame_lines": 9 + n_atoms, "box_header": box_header, "atoms_line": atoms_line,
            "ncol": ncol, "usecols": usecols, "pos_cols": list(range(k0, len(usecols))),
            "raw_ids": ids if raw_order is None else ids[raw_order],
            "raw_types": (types if raw_order is None else types[raw_order]) if "type" in col else None,
            "ids": ids, "types": types, "elements": elements, "order": order,
            "unwrapped": unwrapped, "scaled": coords[0] in ("xs", "xsu"),
            "batch_frames": max(1, BATCH_LINES // max(1, n_atoms)),
            "batch_bytes": max(1 << 20, min(BATCH_LINES, n_atoms * max(1, BATCH_LINES // max(1, n_atoms)))
                               * (len(lines[0]) if lines else 64) + 512),
            "box_header_b": box_header.encode(), "atoms_line_b": atoms_line.encode(),
        }
    return DumpFrame(timestep, cell, origin, ids, types, elements, xyz, unwrapped, start)
