"""The melanoma Gradio demo as a folder app: `app/app.py` in the repository, `app.py` of a Hugging Face Space.

    python app/app.py                                   # the newest model under models/ on http://127.0.0.1:7860
    MELANOMA_MODEL=models/demo MELANOMA_SEG_MODEL=models/seg python app/app.py

`melanoma demo --export DIR` writes this file into a Space folder together with the models, example images and, as
a wheel, the melanoma package. The wheel is put on the import path rather than installed: a Space installs
requirements.txt before the rest of its files are there, and the package is pure Python. Everything else lives in
`melanoma.app.folder_app` (where the models are looked for; environment variables) and `launch_from_env`."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(w) for w in sorted(HERE.glob('melanoma-*.whl'))]  # a bundled melanoma wheel wins over an installed one

from melanoma.core import MelanomaError  # noqa: E402
from melanoma.app import folder_app, launch_from_env  # noqa: E402

try: demo = folder_app(HERE)
except MelanomaError as e: sys.exit(f'melanoma demo: {e}')

if __name__ == '__main__':
    launch_from_env(demo)
