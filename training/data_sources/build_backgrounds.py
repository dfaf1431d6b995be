"""Assemble a background-image folder from extracted Debian packages and PyPI sample data (see README.md)."""
import csv
import functools
import hashlib
import io
import os
import random
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = None
DATA = Path(os.environ.get("CARDSORTER_DATA", "/work/data"))
X = DATA / "debs/x"  # one folder per package: dpkg-deb -x PKG.deb debs/x/PKG
OUT = DATA / "backgrounds"
SITE = Path(os.environ.get("SAMPLES_SITE_PACKAGES", str(DATA / "venvs/det-data/lib/python3.11/site-packages")))
MAX_SIDE = 1600
MIN_SIDE = 200
BAD_NAME = re.compile(r"(_norm|_bump|_gloss|_glow|_luma|_shirt|_pants|_reflect|_alpha|_spec|_height|_nm\b|_nm\.|normal|_local|_ddn|_fx|logo|icon|_lm\b|lightmap|_blend|_mask|sky|flare|particle|font|decal|_s\.|_g\.|_h\.|_n\.)", re.IGNORECASE)

VERSIONS = {}
for deb in (DATA / "debs").glob("*.deb"):
    name, ver = deb.name.split("_")[:2]
    VERSIONS[name] = ver.replace("%3a", ":")

LICENSES = {
    "plasma-workspace-wallpapers": "GPL-2+ (per debian/copyright; some wallpapers CC-BY-SA, see metadata.json)",
    "gnome-backgrounds": "CC-BY-SA-3.0 / CC-BY-SA-2.0 / CC-BY-2.0 per image (debian/copyright)",
    "mate-backgrounds": "GPL-2+ / CC-BY-SA-4.0 per image (debian/copyright)",
    "ukui-wallpapers": "CC-BY-SA-3.0",
    "lomiri-wallpapers": "CC-BY-4.0 / CC-BY-SA-3.0/4.0 / CC0 per image (debian/copyright)",
    "lomiri-wallpapers-16.04": "CC-BY-4.0 / CC-BY-SA-3.0/4.0 / CC0 per image (debian/copyright)",
    "lomiri-wallpapers-20.04": "CC-BY-4.0 / CC-BY-SA-3.0/4.0 / CC0 per image (debian/copyright)",
    "sway-backgrounds": "CC0 (sway wallpapers; debian/copyright)",
    "desktop-base": "GPL-2+ / CC-BY-SA-3.0 per theme (debian/copyright)",
    "xfdesktop4-data": "GPL-2+",
    "mypaint-data-extras": "CC0 / public-domain / GPL-2+ per file (debian/copyright)",
    "sweethome3d": "GPL-2+ (textures in sweethome3d.jar; debian/copyright)",
    "colobot-common-textures": "GPL-3+",
    "nexuiz-textures": "GPL-2+",
    "openarena-081-textures": "GPL-2+",
    "pypi:scikit-image==0.25.2": "CC0 / public domain per image (skimage.data docstrings)",
    "pypi:matplotlib==3.10.1": "public domain (grace_hopper.jpg, US Navy photo)",
}
KIND = {
    "nexuiz-textures": "texture", "openarena-081-textures": "texture", "colobot-common-textures": "texture",
    "sweethome3d": "texture", "mypaint-data-extras": "texture",
}


def candidates() -> Iterator[tuple[str, Path, Callable[[], bytes] | None]]:
    """Yield (package, source_path, opener) tuples."""
    exts = (".jpg", ".jpeg", ".png", ".webp", ".tga")
    # plasma: largest image per wallpaper dir (light and dark)
    base = X / "plasma-workspace-wallpapers/usr/share/wallpapers"
    for wp in sorted(base.iterdir()):
        for sub in ("images", "images_dark"):
            imgs = [p for p in (wp / "contents" / sub).glob("*") if p.suffix.lower() in exts] if (wp / "contents" / sub).exists() else []
            if imgs:
                best = max(imgs, key=lambda p: p.stat().st_size)
                yield "plasma-workspace-wallpapers", best, None
    for pkg in ["gnome-backgrounds", "mate-backgrounds", "ukui-wallpapers", "lomiri-wallpapers", "lomiri-wallpapers-16.04",
                "lomiri-wallpapers-20.04", "xfdesktop4-data", "mypaint-data-extras", "colobot-common-textures"]:
        seen = set()
        for p in sorted((X / pkg).rglob("*")):
            if p.suffix.lower() not in exts or "/icons/" in str(p) or "/pixmaps/" in str(p):
                continue
            if pkg == "colobot-common-textures" and re.search(r"/(interface|objects|planets)/", str(p)):
                continue
            key = re.sub(r"_\d+x\d+", "", p.stem)
            if key in seen:
                continue
            seen.add(key)
            yield pkg, p, None
    sway = sorted((X / "sway-backgrounds").rglob("*.png"), key=lambda p: -p.stat().st_size)
    if sway:
        yield "sway-backgrounds", sway[0], None
    for p in sorted((X / "desktop-base/usr/share/desktop-base").rglob("*")):
        if p.suffix.lower() in (".png", ".jpg") and ("/grub/" in str(p) or "/login/" in str(p)) and "16x9" in p.name or ("/login/" in str(p) and p.suffix == ".png"):
            yield "desktop-base", p, None
    jar = X / "sweethome3d/usr/share/sweethome3d/sweethome3d.jar"
    z = zipfile.ZipFile(jar)
    for n in z.namelist():
        if "/resources/textures/" in n and n.lower().endswith((".jpg", ".png")):
            yield "sweethome3d", Path(jar.as_posix() + "!" + n), functools.partial(z.read, n)
    rnd = random.Random(7)
    for pkg, pk3, quota in [("nexuiz-textures", X / "nexuiz-textures/usr/share/games/nexuiz/data/textures.pk3", 140),
                            ("openarena-081-textures", X / "openarena-081-textures/usr/share/games/openarena/baseoa/pak4-textures.pk3", 90)]:
        z2 = zipfile.ZipFile(pk3)
        names = [n for n in z2.namelist() if n.lower().endswith((".jpg", ".tga", ".png")) and not BAD_NAME.search(n.rsplit("/", 1)[-1])]
        names = [n for n in names if z2.getinfo(n).file_size > 30000]
        pref = [n for n in names if re.search(r"wood|carpet|fabric|cloth|floor|tile|concrete|stone|marble|grass|dirt|rock|brick|plank|rug|leather|paper|sand|wall", n, re.IGNORECASE)]
        rest = [n for n in names if n not in pref]
        rnd.shuffle(pref)
        rnd.shuffle(rest)
        pick = pref[: int(quota * 0.7)] + rest[: quota - int(quota * 0.7)]
        for n in sorted(pick):
            yield pkg, Path(pk3.as_posix() + "!" + n), functools.partial(z2.read, n)
    for n in ["astronaut.png", "brick.png", "grass.png", "gravel.png", "coffee.png", "chelsea.png", "rocket.jpg",
              "hubble_deep_field.jpg", "motorcycle_left.png", "camera.png", "coins.png", "moon.png", "page.png", "text.png"]:
        yield "pypi:scikit-image==0.25.2", SITE / "skimage/data" / n, None
    yield "pypi:matplotlib==3.10.1", SITE / "matplotlib/mpl-data/sample_data/grace_hopper.jpg", None


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    hashes: set[str] = set()
    for pkg, src, opener in candidates():
        try:
            data = opener() if opener else src.read_bytes()
            im: Image.Image = Image.open(io.BytesIO(data))
            im.load()
        except Exception as e:  # noqa: BLE001
            print("skip (unreadable)", src, e, file=sys.stderr)
            continue
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            a = np.asarray(im)[..., 3]
            if (a < 250).mean() > 0.05:
                print("skip (transparent)", src, file=sys.stderr)
                continue
        im = im.convert("RGB")
        w, h = im.size
        if min(w, h) < MIN_SIDE:
            print("skip (small)", src, w, h, file=sys.stderr)
            continue
        arr = np.asarray(im.resize((64, 64)))
        if arr.std() < 4:
            print("skip (flat)", src, file=sys.stderr)
            continue
        s = max(w, h)
        if s > MAX_SIDE:
            im = im.resize((round(w * MAX_SIDE / s), round(h * MAX_SIDE / s)), Image.Resampling.LANCZOS)
        digest = hashlib.sha1(np.asarray(im.resize((32, 32))).tobytes()).hexdigest()[:12]
        if digest in hashes:
            continue
        hashes.add(digest)
        pkgdir = pkg.replace("pypi:", "pypi-").split("==")[0]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(src).split("!")[-1].rsplit("/", 2)[-2] + "_" + Path(str(src).split("!")[-1]).stem)
        dst = OUT / pkgdir / f"{name}.jpg"
        k = 1
        while dst.exists():  # different source folders can share a file name
            k += 1
            dst = OUT / pkgdir / f"{name}_{k}.jpg"
        dst.parent.mkdir(parents=True, exist_ok=True)
        im.save(dst, quality=92)
        kind = KIND.get(pkg, "photo_or_wallpaper")
        rows.append({"file": str(dst.relative_to(OUT)), "package": pkg, "version": VERSIONS.get(pkg, pkg.split("==")[-1]),
                     "source_path": str(src).replace(str(X) + "/", ""), "license": LICENSES[pkg],
                     "width": im.size[0], "height": im.size[1], "kind": kind})
    with open(OUT / "manifest.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    from collections import Counter
    print(len(rows), Counter(r["package"] for r in rows))


if __name__ == "__main__":
    main()
