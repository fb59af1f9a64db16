#!/usr/bin/env bash
# more_image_seeds.sh DIR — image seeds that stb_image_write cannot make,
# converted from the PNM seeds in DIR by the tools that are installed (each
# skipped with a note when missing):
#   netpbm's pnmtojpeg   progressive JPEG (several scans, DHT segments between
#                        them), one-component gray, restart markers (FF D0-D7
#                        inside the entropy-coded data)
#   ImageMagick          paletted PNG and BMP (8, 4 and 1 bits), interlaced
#                        and 16-bit PNG, gray+alpha, real LZW GIF, 16-bit PNM
dir=$1
if command -v pnmtojpeg >/dev/null; then
  for f in "$dir"/*.pnm; do
    base=${f%.pnm}
    pnmtojpeg --progressive "$f" >"$base.progressive.jpg" 2>/dev/null
    pnmtojpeg --restart=1 "$f" >"$base.restart.jpg" 2>/dev/null
    pnmtojpeg --grayscale --optimize "$f" >"$base.gray1.jpg" 2>/dev/null
  done
else
  echo "fuzz: no pnmtojpeg (netpbm): no progressive JPEG seeds"
fi
if command -v convert >/dev/null; then
  for f in "$dir"/*_rgb.pnm; do
    base=${f%.pnm}
    convert "$f" -colors 16 PNG8:"$base.palette.png" 2>/dev/null
    convert "$f" -interlace PNG "$base.interlaced.png" 2>/dev/null
    convert "$f" -depth 16 PNG48:"$base.16bit.png" 2>/dev/null
    convert "$f" -colorspace Gray -alpha set -channel A -evaluate set 50% PNG:"$base.gray_alpha.png" 2>/dev/null
    convert "$f" -colors 200 -type Palette -compress None BMP3:"$base.8bit.bmp" 2>/dev/null
    convert "$f" -colors 16 -type Palette -depth 4 BMP3:"$base.4bit.bmp" 2>/dev/null
    convert "$f" -monochrome BMP3:"$base.1bit.bmp" 2>/dev/null
    convert "$f" -alpha set BMP:"$base.32bit.bmp" 2>/dev/null
    convert "$f" "$base.lzw.gif" 2>/dev/null
    convert "$f" -depth 16 PPM:"$base.16bit.pnm" 2>/dev/null
  done
else
  echo "fuzz: no ImageMagick convert: no paletted or interlaced seeds"
fi
exit 0
