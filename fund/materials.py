"""Materials a citizen uploads for an online withdrawal application: rights, files, records.

- Upload rights are a token (HMAC over the application number and an expiry, keyed by a secret
  derived from CORE_AUDIT_KEY), issued to the verified applicant while the application is open and
  has items 待补充; it needs no table and dies by itself after 30 minutes.
- A file is accepted by its magic bytes only (JPEG, PNG, PDF). Images are decoded with a pixel
  limit (decompression bombs), turned upright by their EXIF orientation and re-encoded without
  any metadata; PDFs keep their bytes, at most 5 pages, rendered to images for OCR by pdfium with
  no forms or scripts initialised. Files are stored by sha256 under CORE_UPLOAD_DIR.
- The material's row (hash, size, type, pages, masked OCR fields, check status and notes) and an
  `application.material` audit record carrying the sha256 are written in one transaction.
  A document with another person's ID number is refused: nothing is stored, the attempt is audited.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Optional

from PIL import Image, ImageOps
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from fund.audit import AuditLog
from fund.clock import Clock, china_date
from fund.db import write_transaction
from fund.errors import CoreError
from fund.material_checks import Claim, Verdict
from fund.models import Application, ApplicationMaterial
from fund.privacy import mask_id_number

logger = logging.getLogger(__name__)
TOKEN_TTL_S = 30 * 60
MAX_PIXELS = 40_000_000
MAX_PDF_PAGES = 5
PDF_DPI = 150
OPEN = ("submitted", "under_review")
STATUS_NAMES = {"pending": "待补充", "accepted": "核验通过", "needs_review": "待人工审核", "refused": "未通过核验"}
MEDIA = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}


# --- errors: each with its HTTP status and a Chinese message for the citizen ------------------
class MaterialError(CoreError):
    status = 400
    default = "上传失败，请稍后再试。"

    def __init__(self, message: Optional[str] = None, **extra):
        super().__init__(message or self.default)
        self.message = message or self.default
        self.extra = extra


class UploadTokenInvalid(MaterialError):
    code, status = "upload_token_invalid", 401
    default = "上传凭证无效或已过期，请回到对话中重新获取上传入口。"


class ApplicationClosed(MaterialError):
    code, status = "application_closed", 409
    default = "该申请已不在受理中，不能再上传材料。"


class NothingToUpload(MaterialError):
    code, status = "nothing_to_upload", 409
    default = "该申请没有需要上传的材料。"


class MaterialNotFound(MaterialError):
    code, status = "material_not_found", 404
    default = "该申请中没有这项材料。"


class MaterialNotNeeded(MaterialError):
    code, status = "material_not_needed", 409
    default = "这项材料已经上传过或已从共享数据获取，无需再上传。"


class FileMissing(MaterialError):
    code, status = "file_missing", 422
    default = "没有收到文件：请以 multipart/form-data 上传，文件字段名为 file。"


class FileTooLarge(MaterialError):
    code, status = "file_too_large", 413


class UnsupportedType(MaterialError):
    code, status = "unsupported_type", 415
    default = "只能上传 JPG、PNG 图片或 PDF 文件。"


class ImageTooLarge(MaterialError):
    code, status = "image_too_large", 413
    default = "图片像素过大（上限4000万像素），请缩小后再上传。"


class TooManyPages(MaterialError):
    code, status = "too_many_pages", 422


class FileUnreadable(MaterialError):
    code, status = "file_unreadable", 422
    default = "文件已损坏或无法打开，请重新拍照或导出后再上传。"


class IdNumberMismatch(MaterialError):
    code, status = "id_number_mismatch", 422
    default = "材料上的身份证号不是您本人的，不能作为您的申请材料，文件未保存。请上传写有您本人身份证号的材料。"


class StoredFileChanged(MaterialError):
    code, status = "stored_file_changed", 409
    default = "存储的文件与登记的哈希值不符，可能已被改动，请联系系统管理员。"


# --- decoding ---------------------------------------------------------------------------------
@dataclass
class Decoded:
    data: bytes                 # what is stored: re-encoded image, or the PDF as sent
    media_type: str
    images: list[Image.Image] = field(default_factory=list)   # pages for OCR

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sniff(data: bytes) -> Optional[str]:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def decode(data: bytes, max_bytes: int) -> Decoded:
    """Checks size, type, pixels and pages; returns what to store and the page images to read."""
    if len(data) > max_bytes:
        raise FileTooLarge(f"文件太大（{len(data) / 1048576:.1f} MB），上限为{max_bytes // 1048576} MB，请压缩后再上传。")
    if not data:
        raise FileMissing("收到的文件是空的，请重新选择文件。")
    media_type = sniff(data)
    if media_type is None:
        raise UnsupportedType()
    return _pdf(data) if media_type == "application/pdf" else _image(data, media_type)


def _image(data: bytes, media_type: str) -> Decoded:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise ImageTooLarge()
            image.load()
            upright = ImageOps.exif_transpose(image)
        except MaterialError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageTooLarge() from None
        except (OSError, ValueError, SyntaxError):
            raise FileUnreadable() from None
    if upright.mode not in ("RGB", "L"):
        flat = Image.new("RGB", upright.size, (255, 255, 255))
        flat.paste(upright.convert("RGBA"), mask=upright.convert("RGBA").split()[-1])
        upright = flat
    out = io.BytesIO()
    if media_type == "image/jpeg":
        upright.save(out, "JPEG", quality=90)       # no exif= : the metadata is left behind
    else:
        upright.save(out, "PNG")
    return Decoded(out.getvalue(), media_type, [upright])


def _pdf(data: bytes) -> Decoded:
    import pypdfium2 as pdfium   # only here: the core's other paths need no PDF engine

    try:
        document = pdfium.PdfDocument(data)   # no init_forms(): no form or JavaScript engine is started
    except pdfium.PdfiumError:
        raise FileUnreadable() from None
    try:
        count = len(document)
        if count > MAX_PDF_PAGES:
            raise TooManyPages(f"PDF 共{count}页，最多{MAX_PDF_PAGES}页，请只上传所需的页面。", pages=count)
        if count == 0:
            raise FileUnreadable("PDF 中没有页面。")
        scale = PDF_DPI / 72
        images = []
        for index in range(count):
            page = document[index]
            width, height = page.get_size()
            if width * height * scale * scale > MAX_PIXELS:
                raise ImageTooLarge("PDF 页面尺寸过大，请导出为普通纸张大小后再上传。")
            images.append(page.render(scale=scale).to_pil().convert("RGB"))
            page.close()
    finally:
        document.close()
    return Decoded(data, "application/pdf", images)


# --- multipart --------------------------------------------------------------------------------
def file_field(content_type: str, body: bytes, name: str = "file") -> bytes:
    """The bytes of one multipart/form-data field, exactly as sent."""
    from email.message import Message

    header = Message()
    header["content-type"] = content_type or ""
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise FileMissing()
    for part in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        disposition = next((line.decode("latin-1") for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-disposition:")), "")
        parsed = Message()
        parsed["content-disposition"] = disposition.split(":", 1)[-1].strip()
        if parsed.get_param("name", header="content-disposition") == name:
            return content.removesuffix(b"\r\n")
    raise FileMissing()


# --- the service ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """The application item an upload is for, and what its document is checked against."""

    number: str
    material_id: int
    name: str
    channel_ref: str
    subject: str          # masked ID number, for the audit
    claim: Claim


def item_key(material: ApplicationMaterial) -> str:
    return f"m{material.id}"


def _material_id(key: str) -> int:
    if len(key) < 2 or key[0] != "m" or not key[1:].isdigit() or len(key) > 12:
        raise MaterialNotFound()
    return int(key[1:])


def pending(material: ApplicationMaterial) -> bool:
    return not material.fetched and material.file_sha256 is None


class MaterialService:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, audit: AuditLog, secret: bytes,
                 upload_dir: Path, max_bytes: int):
        self._sessions = sessions
        self._clock = clock
        self._audit = audit
        self._key = hmac.new(secret, b"anju upload token v1", hashlib.sha256).digest()
        self.upload_dir = Path(upload_dir)
        self.max_bytes = max_bytes

    # --- upload rights ---------------------------------------------------------------------
    def _sign(self, number: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{number}|{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _now_s(self) -> int:
        return int(self._clock().replace(tzinfo=dt.timezone.utc).timestamp())

    def issue_token(self, person_id: int, number: str) -> dict:
        with self._sessions() as session:
            app = self._application(session, number, person_id)
            items = [m for m in app.materials if pending(m)]
            if app.status not in OPEN:
                raise ApplicationClosed()
            if not items:
                raise NothingToUpload("该申请需要上传的材料都已提交，无需再上传。")
        expires = self._now_s() + TOKEN_TTL_S
        return {"token": f"{expires}.{self._sign(number, expires)}", "expires_in_s": TOKEN_TTL_S,
                "items": [{"key": item_key(m), "name": m.name} for m in items]}

    def check_token(self, number: str, token: Optional[str]) -> None:
        expires_text, _, signature = (token or "").partition(".")
        if not expires_text.isdigit() or len(expires_text) > 12 or not signature:
            raise UploadTokenInvalid()
        if not hmac.compare_digest(signature.encode(), self._sign(number, int(expires_text)).encode()):
            raise UploadTokenInvalid()
        if int(expires_text) <= self._now_s():
            raise UploadTokenInvalid("上传凭证已过期（有效期30分钟），请回到对话中重新获取上传入口。")

    # --- one upload --------------------------------------------------------------------------
    @staticmethod
    def _application(session: Session, number: str, person_id: Optional[int] = None) -> Application:
        query = select(Application).where(Application.number == number, Application.amount.is_not(None)).options(
            selectinload(Application.materials), selectinload(Application.person))
        if person_id is not None:
            query = query.where(Application.person_id == person_id)
        app = session.scalar(query)
        if app is None:
            from fund.applications import ApplicationNotFound   # its errors map to 404 application_not_found
            raise ApplicationNotFound()
        return app

    def _item(self, app: Application, key: str) -> ApplicationMaterial:
        wanted = _material_id(key)
        material = next((m for m in app.materials if m.id == wanted), None)
        if material is None:
            raise MaterialNotFound()
        if app.status not in OPEN:
            raise ApplicationClosed()
        if not pending(material):
            raise MaterialNotNeeded()
        return material

    def target(self, number: str, key: str) -> Target:
        """The item, if it still needs a file (after the token was checked)."""
        with self._sessions() as session:
            app = self._application(session, number)
            material = self._item(app, key)
            person = app.person
            claim = Claim(id_number=person.id_number, name=person.name, amount=Decimal(app.amount),
                          submitted_on=china_date(app.submitted_at))
            return Target(number=number, material_id=material.id, name=material.name,
                          channel_ref=app.channel_ref or "citizen", subject=mask_id_number(person.id_number),
                          claim=claim)

    def refuse(self, target: Target, decoded: Decoded, verdict: Verdict) -> int:
        """Another person's document: nothing is kept; the attempt goes into the audit chain."""
        def work(session: Session) -> int:
            return self._audit.append_in(
                session, actor=target.channel_ref, action="application.material", subject=target.subject,
                at=self._clock(), outcome=f"{target.number} m{target.material_id} refused {verdict.code} "
                                          f"sha256={decoded.sha256}").seq
        seq = write_transaction(self._sessions, work)
        logger.warning("application.material.refused number=%s item=m%s code=%s", target.number,
                       target.material_id, verdict.code)
        return seq

    def store(self, decoded: Decoded) -> Path:
        """Writes the file under its hash (atomically; the same content is written once)."""
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        path = self.upload_dir / f"{decoded.sha256}.{MEDIA[decoded.media_type]}"
        if not path.exists():
            temporary = path.with_suffix(".part")
            with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "wb") as out:
                out.write(decoded.data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        return path

    def record(self, target: Target, decoded: Decoded, verdict: Verdict) -> tuple[list[str], int]:
        """Stores the file, then the row and its audit record in one transaction: (remaining names, seq)."""
        self.store(decoded)
        now = self._clock()

        def work(session: Session) -> tuple[list[str], int]:
            app = self._application(session, target.number)
            material = self._item(app, f"m{target.material_id}")   # again: a parallel upload may have won
            material.file_sha256 = decoded.sha256
            material.file_size = len(decoded.data)
            material.media_type = decoded.media_type
            material.pages = len(decoded.images)
            material.ocr_fields = json.dumps(verdict.fields, ensure_ascii=False, sort_keys=True)
            material.check_status = verdict.status
            material.check_notes = "；".join(verdict.notes)[:500] or None
            material.uploaded_at = now
            material.summary = f"已上传（{STATUS_NAMES[verdict.status]}）"
            app.updated_at = now
            seq = self._audit.append_in(
                session, actor=target.channel_ref, action="application.material", subject=target.subject, at=now,
                outcome=f"{target.number} m{material.id} {verdict.status} sha256={decoded.sha256} "
                        f"bytes={len(decoded.data)} pages={len(decoded.images)}").seq
            return [m.name for m in app.materials if pending(m)], seq

        remaining, seq = write_transaction(self._sessions, work)
        logger.info("application.material.stored number=%s item=m%s status=%s remaining=%d", target.number,
                    target.material_id, verdict.status, len(remaining))
        return remaining, seq

    # --- the reviewer's copy -----------------------------------------------------------------
    def stored_file(self, number: str, key: str) -> tuple[Path, str]:
        """The stored file of an item and its media type, after checking it still has its hash."""
        with self._sessions() as session:
            app = self._application(session, number)
            wanted = _material_id(key)
            material = next((m for m in app.materials if m.id == wanted and m.file_sha256), None)
            if material is None:
                raise MaterialNotFound("这项材料没有上传的文件。")
            path = self.upload_dir / f"{material.file_sha256}.{MEDIA[material.media_type]}"
            expected = material.file_sha256
            media_type = material.media_type
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as stored:
                for block in iter(lambda: stored.read(1 << 20), b""):
                    digest.update(block)
        except FileNotFoundError:
            raise StoredFileChanged("存储的文件不存在，请联系系统管理员。") from None
        if digest.hexdigest() != expected:
            raise StoredFileChanged()
        return path, media_type


def upload_views(materials: list[ApplicationMaterial], staff: bool) -> list[dict]:
    """The items that had to be supplied: key, name, status; for reviewers also notes, hash and fields."""
    views = []
    for material in materials:
        if material.fetched:
            continue
        status = material.check_status or "pending"
        view = {"key": item_key(material), "name": material.name, "status": status,
                "status_name": STATUS_NAMES.get(status, status)}
        if staff:
            view.update(notes=material.check_notes, sha256=material.file_sha256, size=material.file_size,
                        media_type=material.media_type, pages=material.pages,
                        fields=json.loads(material.ocr_fields) if material.ocr_fields else {},
                        uploaded_at=(material.uploaded_at.isoformat(timespec="seconds")
                                     if material.uploaded_at else None))
        views.append(view)
    return views


def outcome_message(name: str, verdict: Verdict, remaining: list[str]) -> str:
    if verdict.status == "accepted":
        head = f"“{name}”已上传，核验通过。"
    else:
        why = "；".join(verdict.notes) or "需要人工核对"
        head = f"“{name}”已上传，但{why}，将由工作人员人工审核，无需重复上传。"
    if remaining:
        return head + "还需上传：" + "、".join(remaining) + "。"
    return head + "材料已全部提交，请等待工作人员审核，审核结果会通知您。"
