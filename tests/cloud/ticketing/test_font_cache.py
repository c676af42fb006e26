"""The report PDF's small CJK face: cut once from the full font, it has every character of the
pages' catalogue, is used when it covers a document and not when it does not."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from cloud.ticketing.web import font_cache, report_pdf, zh_cn
from cloud.ticketing.web.report_pdf import write_pdf


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    full = report_pdf.find_cjk_font()
    if full is None:
        pytest.skip("no CJK font: apt-get install fonts-noto-cjk")
    small = tmp_path_factory.mktemp("fonts") / "common.otf"
    font_cache.cut(full, small)
    return full, (small, 0)


def test_the_small_face_has_every_character_of_the_catalogue(faces) -> None:
    _, small = faces
    catalogue = "".join(zh_cn.MESSAGES.values()) + "".join(
        name for names in zh_cn.NAMES.values() for name in names.values()
    )
    assert font_cache.covers(small, catalogue)
    assert font_cache.covers(small, "KFR-35GW B20240517 ≤3 ΔT 18 °C")
    assert not font_cache.covers(small, "𠀀")  # beyond GB 2312: the full font is used
    assert small[0].stat().st_size < faces[0][0].stat().st_size / 5


def _fonts(pdf: bytes) -> set[str]:
    reader = PdfReader(io.BytesIO(pdf))
    return {str(f["/BaseFont"]) for p in reader.pages for f in p["/Resources"]["/Font"].values()}


class _Section:
    def __init__(self, heading: str) -> None:
        self.heading, self.charts, self.tables, self.notes = heading, (), (), ()


def test_a_document_uses_it_only_when_it_covers_every_character(faces, monkeypatch) -> None:
    full, small = faces
    used = []
    add_font = report_pdf.FPDF.add_font

    def recording(pdf, family, **kw):  # noqa: ANN001, ANN202
        used.append(kw["fname"])
        return add_font(pdf, family, **kw)

    monkeypatch.setattr(report_pdf.FPDF, "add_font", recording)
    monkeypatch.setattr(font_cache, "common_face", lambda font, **_: small)
    common = write_pdf("月度售后质量报告", "2024-05", [_Section("问题类型占比")], full)
    rare = write_pdf("月度售后质量报告", "2024-05", [_Section("𠀀 问题")], full)
    assert common.startswith(b"%PDF") and rare.startswith(b"%PDF")
    assert used == [str(small[0]), str(full[0])]
    assert _fonts(common) == _fonts(rare) == {"/MPDFAA+NotoSansCJKSC"}  # the same face to readers
    monkeypatch.setattr(font_cache, "covers", lambda *_: pytest.fail("not asked: no small face"))
    monkeypatch.setattr(font_cache, "common_face", lambda font, **_: None)
    assert write_pdf("x", "y", [], full).startswith(b"%PDF")


def test_the_cut_is_kept_under_a_name_of_its_source(faces, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    full, small = faces
    cuts = []

    def fake_cut(_full, target) -> None:  # noqa: ANN001 - the real cut is the fixture's
        cuts.append(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(small[0].read_bytes())

    monkeypatch.setattr(font_cache, "cut", fake_cut)
    target = font_cache.cached_path(full)
    assert target.parent == tmp_path / "qloop" and full[0].stem in target.name
    assert font_cache.common_face(full, wait=True) == (target, 0) and target.is_file()
    assert font_cache.common_face(full) == (target, 0)  # found on disk, not cut again
    assert cuts == [target]
    assert not list(target.parent.glob("*.partial"))
