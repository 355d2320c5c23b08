"""A digit "drawn by hand" for `nnscratch predict`: two pen strokes on a white 400x400 canvas.

Run::

    python examples/draw_seven.py [PATH]      # writes my_seven.png (or PATH)
    nnscratch predict my_seven.png --show
"""

import sys

from PIL import Image, ImageDraw


def draw_seven(path="my_seven.png"):
    image = Image.new("RGB", (400, 400), "white")
    pen = ImageDraw.Draw(image)
    pen.line([(110, 90), (290, 80), (250, 160), (185, 330)], fill=(20, 20, 60), width=26, joint="curve")
    pen.line([(170, 200), (270, 195)], fill=(20, 20, 60), width=20)   # the bar across a European 7
    image.save(path)
    return path


if __name__ == "__main__":
    print(f"wrote {draw_seven(*sys.argv[1:2])}")
