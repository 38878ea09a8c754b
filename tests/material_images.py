"""Synthetic Chinese documents for the upload tests and the OCR bench (a generator, no tests here).

Lease contracts, invoices and certificates rendered with the Noto CJK fonts, each with its own
layout, font, size, slight rotation, noise and JPEG quality drawn from a seeded random source,
so OCR is tried on varied images rather than one template. `truth` holds the key fields as the
document prints them, for the character error figures.
"""
from __future__ import annotations

import datetime as dt
import io
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Optional

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path("/usr/share/fonts/opentype/noto")
FONTS = ("NotoSansCJK-Regular.ttc", "NotoSerifCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", "NotoSerifCJK-Bold.ttc")
SC_INDEX = 2   # the Simplified Chinese face in each Noto CJK collection
PAPER = (250, 250, 246)
INK = (25, 25, 30)


@dataclass
class Document:
    kind: str                      # lease / invoice / certificate / noise
    image: Image.Image
    truth: dict[str, str] = field(default_factory=dict)
    pages: list[Image.Image] = field(default_factory=list)

    def jpeg(self, quality: Optional[int] = None, rng: Optional[random.Random] = None) -> bytes:
        quality = quality or (rng or random.Random(0)).randint(70, 92)
        out = io.BytesIO()
        self.image.convert("RGB").save(out, "JPEG", quality=quality)
        return out.getvalue()

    def png(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, "PNG")
        return out.getvalue()


def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), size, index=SC_INDEX)


def cn_date(day: dt.date, style: int) -> str:
    return (f"{day.year}年{day.month}月{day.day}日", f"{day:%Y-%m-%d}", f"{day:%Y.%m.%d}")[style % 3]


def yuan(amount: Decimal, style: int) -> str:
    return (f"¥{amount:,.2f}", f"{amount:.2f}元", f"人民币{amount:,.2f}元")[style % 3]


def render(lines: list[str], rng: random.Random, *, title: Optional[str] = None, width: int = 1240,
           rotate: Optional[float] = None, noise: Optional[float] = None) -> Image.Image:
    """Lines of text on paper: a random font and size, margins and spacing, then rotation and noise."""
    size = rng.randint(28, 38)
    face = font(rng.choice(FONTS), size)
    title_face = font(rng.choice(FONTS[2:]), size + 14)
    margin = rng.randint(60, 120)
    spacing = int(size * rng.uniform(1.6, 2.1))
    height = margin * 2 + (len(lines) + (2 if title else 0)) * spacing + 40
    image = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(image)
    y = margin
    if title:
        box = draw.textbbox((0, 0), title, font=title_face)
        draw.text(((width - (box[2] - box[0])) // 2, y), title, font=title_face, fill=INK)
        y += spacing * 2
    indent = rng.randint(0, 40)
    for line in lines:
        draw.text((margin + indent, y), line, font=face, fill=INK)
        y += spacing
    angle = rotate if rotate is not None else rng.uniform(-3, 3)
    image = image.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=PAPER)
    return add_noise(image, rng, noise if noise is not None else rng.uniform(4, 14))


def add_noise(image: Image.Image, rng: random.Random, sigma: float) -> Image.Image:
    """Gaussian sensor noise and a touch of blur, as a phone photo of paper has."""
    if sigma <= 0:
        return image
    grain = Image.effect_noise(image.size, sigma).convert("RGB")
    noisy = Image.blend(image, grain, 0.12 if sigma < 20 else 0.6)
    return noisy.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.7)))


def lease(rng: random.Random, *, tenant: str, id_number: str, monthly_rent: Decimal, start: dt.date,
          end: dt.date, address: str = "常州市钟楼区怀德中路58号3幢602室", landlord: str = "顾建国",
          landlord_id: Optional[str] = None) -> Document:
    style = rng.randint(0, 2)
    rent = yuan(monthly_rent, rng.randint(0, 2))
    parties = [f"出租方（甲方）：{landlord}", f"承租方（乙方）：{tenant}", f"乙方身份证号：{id_number}"]
    if landlord_id:
        parties.insert(1, f"甲方身份证号：{landlord_id}")
    terms = [f"房屋坐落：{address}", f"租赁期限：自{cn_date(start, style)}起至{cn_date(end, style)}止",
             f"月租金：{rent}，按月支付", "押金：一个月租金，租期届满后无息退还", "甲乙双方签字后生效。"]
    if rng.random() < 0.5:
        terms.insert(0, terms.pop(1))   # another contract puts the term first
    lines = parties + terms + ["", f"签订日期：{cn_date(start, style)}"]
    return Document("lease", render(lines, rng, title=rng.choice(["房屋租赁合同", "住房租赁合同"])),
                    truth={"id_number": id_number, "start": cn_date(start, style), "end": cn_date(end, style),
                           "monthly_rent": rent, "tenant": tenant})


def invoice(rng: random.Random, *, buyer: str, items: list[tuple[str, Decimal]], total: Optional[Decimal] = None,
            id_number: Optional[str] = None, issued: dt.date = dt.date(2026, 10, 12)) -> Document:
    """`total` other than the sum of the lines makes an invoice whose figures do not add up."""
    total = sum((amount for _, amount in items), Decimal(0)) if total is None else total
    style = rng.randint(0, 2)
    head = [f"发票号码：{rng.randint(10 ** 7, 10 ** 8 - 1)}", f"开票日期：{cn_date(issued, style)}",
            f"购买方名称：{buyer}"]
    if id_number:
        head.append(f"购买方身份证号：{id_number}")
    body = ["项目名称            金额"] + [f"{name}            {amount:.2f}" for name, amount in items]
    label = rng.choice(["合计", "价税合计"])
    tail = [f"{label}：¥{total:,.2f}", "销售方：常州市第一人民医院" if rng.random() < 0.5 else "销售方：常州安居置业有限公司"]
    title = rng.choice(["电子发票（普通发票）", "医疗收费票据", "增值税电子普通发票"])
    return Document("invoice", render(head + body + tail, rng, title=title),
                    truth={"total": f"{total:,.2f}", **({"id_number": id_number} if id_number else {}),
                           **{f"line{i}": f"{a:.2f}" for i, (_, a) in enumerate(items)}})


def certificate(rng: random.Random, *, name: str, id_number: str, title: str = "解除劳动关系证明",
                body: str = "与我单位的劳动合同已于2026年3月31日解除，特此证明。",
                employer: str = "常州市安居软件有限公司") -> Document:
    style = rng.randint(0, 2)
    lines = [f"兹证明{name}（身份证号：{id_number}）", body, "", f"单位（盖章）：{employer}",
             f"日期：{cn_date(dt.date(2026, 4, 2), style)}"]
    return Document("certificate", render(lines, rng, title=title),
                    truth={"id_number": id_number, "name": name})


def noise(rng: random.Random, size: tuple[int, int] = (1000, 1300)) -> Document:
    """A photo of nothing legible: what a blurred, dark or wrong shot gives OCR."""
    image = Image.effect_noise(size, 90).convert("RGB").filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 3)))
    return Document("noise", image)


def pdf(pages: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    first, *rest = [p.convert("RGB") for p in pages]
    first.save(out, "PDF", resolution=150, save_all=True, append_images=rest)
    return out.getvalue()


def varied(rng: random.Random, count: int, id_number: str, name: str) -> list[Document]:
    """`count` documents of the three kinds in turn, each drawn afresh (the bench's sample)."""
    docs = []
    for i in range(count):
        if i % 3 == 0:
            start = dt.date(2026, rng.randint(1, 6), 1)
            docs.append(lease(rng, tenant=name, id_number=id_number, start=start,
                              end=start.replace(year=start.year + 1) - dt.timedelta(days=1),
                              monthly_rent=Decimal(rng.choice([1200, 1500, 1800, 2400, 3100]))))
        elif i % 3 == 1:
            items = [(n, Decimal(rng.randint(100, 9000)) + Decimal(rng.randint(0, 99)) / 100)
                     for n in rng.sample(["住院费", "检查费", "药品费", "治疗费", "材料费"], rng.randint(2, 4))]
            docs.append(invoice(rng, buyer=name, items=items, id_number=id_number if rng.random() < 0.5 else None))
        else:
            docs.append(certificate(rng, name=name, id_number=id_number,
                                    title=rng.choice(["解除劳动关系证明", "退休证明", "诊断证明书"])))
    return docs
