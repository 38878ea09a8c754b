"""OCR of uploaded materials with RapidOCR (PP-OCR models shipped inside the wheel, ONNX Runtime).

One engine per process, loaded at first use (loading takes about a second and ~100 MB). A page
takes about a second of CPU, so `read_pages` runs in a worker thread and holds the process's one
OCR slot (a lock taken in that thread, so waiting never blocks the event loop, whichever loop
the caller runs): an upload never stalls the core's other requests, and two OCRs never fight
over the same cores. The engine is given pixels only; nothing in a document is interpreted.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

import anyio
import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)
MAX_SIDE = 2000   # larger pages are scaled down first: more pixels cost time, not accuracy

_engine: Optional[Any] = None
_engine_lock = threading.Lock()
_slot = threading.Lock()   # one OCR at a time in this process


@dataclass(frozen=True)
class Line:
    text: str
    box: list[list[float]]   # four corners, clockwise from top left, in page pixels
    score: float


class OcrUnavailable(RuntimeError):
    """The OCR engine could not be loaded (missing package or model)."""


def engine() -> Any:
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                try:
                    from rapidocr_onnxruntime import RapidOCR
                except ImportError as exc:
                    raise OcrUnavailable("rapidocr-onnxruntime is not installed") from exc
                started = time.perf_counter()
                _engine = RapidOCR()
                logger.info("ocr.engine.loaded seconds=%.2f", time.perf_counter() - started)
    return _engine


def read_page(image: Image.Image) -> list[Line]:
    """Text lines of one page image, top to bottom (blocking: call it from a worker thread)."""
    page = image.convert("RGB")
    if max(page.size) > MAX_SIDE:
        page.thumbnail((MAX_SIDE, MAX_SIDE))
    result, _elapsed = engine()(np.asarray(page)[:, :, ::-1])   # RapidOCR takes BGR like OpenCV
    lines = [Line(text=str(text), box=[list(map(float, p)) for p in box], score=float(score))
             for box, text, score in (result or [])]
    return sorted(lines, key=lambda line: (line.box[0][1], line.box[0][0]))


def read_document(images: list[Image.Image]) -> list[list[Line]]:
    """Every page of one document, holding the OCR slot throughout (blocking)."""
    with _slot:
        return [read_page(image) for image in images]


async def read_pages(images: list[Image.Image]) -> list[list[Line]]:
    """Every page, one OCR at a time in this process, in a worker thread (off the event loop)."""
    return await anyio.to_thread.run_sync(read_document, images)
