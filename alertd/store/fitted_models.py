"""Fitted models, persisted so a restart does not start warm-up again.

A model's blob is written in pieces (alertd/model_blob.py): the row is inserted with a
`zeroblob` of the blob's size and the pieces are written into it with SQLite's incremental
blob I/O, all in one transaction, so a crash or an error part-way leaves the previous model
as it was and neither a joined copy of the blob nor SQLite's copy of a bound value is made.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model_blob import CHUNK, Pieces

FORMAT_BYTES = 1  # the bytes of a detector's `dump_model` (every row before format 2)
FORMAT_PIECES = 2  # a pickle in pieces (alertd/model_blob.py), read back into a bytearray
_COLUMNS = ("rule", "detector", "version", "fitted_at", "saved_at", "series", "train_rows", "fit_seconds",
            "size", "params")


@dataclass(frozen=True)
class StoredModel:
    """A model row: which rule and detector version it belongs to, and its serialised bytes
    (`Pieces` when saving a model pickled in pieces; what `load` returns for such a row is a
    bytearray, whose memory the loaded model's arrays share)."""

    rule: str
    detector: str
    version: str
    fitted_at: float
    saved_at: float
    series: int
    train_rows: int
    fit_seconds: float
    size: int
    blob: bytes | bytearray | Pieces
    params: str = ""  # the detector's params (JSON) the model was fitted with


class ModelStore:
    """Save and load the latest fitted model of each rule."""

    def __init__(self, db):
        self.db = db

    def save(self, model: StoredModel) -> None:
        """Insert or replace the rule's model (one row per rule), in one transaction."""
        pieces = model.blob if isinstance(model.blob, Pieces) else Pieces([model.blob])
        values = [getattr(model, c) for c in _COLUMNS]
        values.append(FORMAT_PIECES if isinstance(model.blob, Pieces) else FORMAT_BYTES)
        columns = ", ".join(f"[{c}]" for c in (*_COLUMNS, "format"))
        with self.db.atomic():
            rowid = self.db.execute(
                f"INSERT OR REPLACE INTO models ({columns}, [blob]) VALUES ({', '.join('?' * len(values))}, "
                "zeroblob(?))", [*values, len(pieces)]).lastrowid
            if len(pieces):
                with self.db.conn.blobopen("models", "blob", rowid) as out:
                    for piece in pieces:
                        out.write(piece)

    def load(self, rule: str) -> StoredModel | None:
        """The rule's model, or None; a blob in pieces is read in slices into one bytearray."""
        columns = ", ".join(f"[{c}]" for c in _COLUMNS)
        rows = list(self.db.execute(f"SELECT rowid, format, length(blob), {columns} FROM models WHERE rule = ?",
                                    [rule]))
        if not rows:
            return None
        rowid, form, length, *values = rows[0]
        fields = dict(zip(_COLUMNS, values))
        if form == FORMAT_PIECES and length:
            blob = bytearray(length)
            with self.db.conn.blobopen("models", "blob", rowid, readonly=True) as stored:
                for start in range(0, length, CHUNK):
                    blob[start:start + CHUNK] = stored.read(CHUNK)
        else:
            (blob,) = self.db.execute("SELECT blob FROM models WHERE rowid = ?", [rowid]).fetchone()
        return StoredModel(**fields, blob=blob if blob is not None else b"")

    def list(self) -> list[dict]:
        """Every stored model without its bytes (for status pages and `alertd` commands)."""
        return list(self.db["models"].rows_where(
            select="rule, detector, version, params, fitted_at, saved_at, series, train_rows, fit_seconds, size",
            order_by="rule"))

    def delete(self, rule: str) -> None:
        self.db["models"].delete_where("rule = ?", [rule])
