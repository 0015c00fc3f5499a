"""More training photographs for the photo codec, from Debian's wallpaper packages (never Kodak).

The photos bundled with scikit-image, matplotlib and scikit-learn are 14 pictures; a codec trained on them
alone learns their statistics. Debian ships photographic wallpapers (freely licensed, see each package's
copyright file), fetched through the normal package client (no other download):

    python bench/photo_corpus.py --out /tmp/photo-corpus      # apt-get download + dpkg -x, then resize

Each photo is resized (Lanczos) so its longer side is at most --max-side (wallpapers are 1680-2560 px;
shrinking takes out sensor noise and JPEG artefacts, and brings them nearer Kodak's 768x512), and stored
as a quality-95 JPEG without chroma subsampling (small enough to carry to a GPU machine; its error is far
below what a codec at 0.5 bpp keeps). Only photographs are listed: the packages' drawings and abstract
art are left out.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

# package -> its photographs (paths inside the package); picked by eye from a contact sheet.
PHOTOS = {
    "mate-backgrounds": [
        f"usr/share/backgrounds/mate/nature/{name}.jpg"
        for name in (
            "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow",
            "LadyBird", "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower",
        )
    ],
    "plasma-workspace-wallpapers": [
        f"usr/share/wallpapers/{name}/contents/images/2560x1600.jpg"
        for name in (
            "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
            "Grey", "Kite", "OneStandsOut", "Path", "summer_1am",
        )
    ],
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the photos (made if missing)")
    ap.add_argument("--max-side", type=int, default=1024)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", *PHOTOS], cwd=tmp, check=True)
        for package, paths in PHOTOS.items():
            (deb,) = Path(tmp).glob(f"{package}_*.deb")
            root = Path(tmp) / package
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
            for rel in paths:
                img = Image.open(root / rel).convert("RGB")
                scale = min(1.0, args.max_side / max(img.size))
                size = (round(img.size[0] * scale), round(img.size[1] * scale))
                img = img.resize(size, Image.LANCZOS)
                name = rel.split("/")[-1] if package == "mate-backgrounds" else rel.split("/")[3] + ".jpg"
                img.save(args.out / name, quality=95, subsampling=0)
                print(f"{package}: {rel} -> {name} {size[0]}x{size[1]}")


if __name__ == "__main__":
    main()
