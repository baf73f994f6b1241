"""CSV uploads on the admin pages: every row or none, audited, every bad line shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from flask import flash, request
from flask.typing import ResponseReturnValue

from admin.auth import audit
from ivr import importer

Render = Callable[..., str]


def import_upload(
    kind: str,
    run: Callable[[IO[bytes]], importer.ImportResult],
    render: Render,
    *,
    missing: str = "请选择CSV文件。",
) -> ResponseReturnValue:
    """Import the posted ``file`` with ``run``; ``render(**extra)`` shows the page.

    No file: 400 and the form again. A rejected file: 400 and every bad line (nothing was
    imported). Either way, and on success, the audit log says what happened.
    """
    upload_file = request.files.get("file")
    if upload_file is None or not upload_file.filename:
        flash(missing, "error")
        return render(), 400
    filename = upload_file.filename[:120]
    try:
        result = run(upload_file.stream)
    except importer.ImportRejected as rejected:
        audit("import_rejected", kind=kind, file=filename, errors=len(rejected.errors))
        return render(rejected=rejected.errors), 400
    audit(
        "import",
        kind=kind,
        file=filename,
        created=result.created,
        updated=result.updated,
        warnings=len(result.warnings),
    )
    return render(result=result)
