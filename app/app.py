"""The melanoma Gradio demo as a Hugging Face Space style entry point.

    python app/app.py                      # serves the newest model under models/ on http://127.0.0.1:7860
    MELANOMA_MODEL=models/demo python app/app.py

Everything lives in `melanoma.app`; this file only picks the model and launches. A Space runs `python app.py` with
GRADIO_SERVER_NAME/GRADIO_SERVER_PORT set, and a `models/<run>/` folder beside this file."""
import os, sys
from pathlib import Path
from melanoma.core import MelanomaError
from melanoma.app import build_app, find_model, launch

HERE = Path(__file__).resolve().parent

def _model_dir() -> Path:
    "MELANOMA_MODEL if set, else the newest run under ./models, else under models/ beside this file."
    if os.environ.get('MELANOMA_MODEL'): return Path(os.environ['MELANOMA_MODEL'])
    try: return find_model('models')
    except MelanomaError:
        if (HERE / 'models').is_dir(): return find_model(HERE / 'models')
        raise

_thr = os.environ.get('MELANOMA_THRESHOLD')  # default: the model's operating point (95% sensitivity out of fold), else 0.5
try: demo = build_app(_model_dir(), threshold=float(_thr) if _thr else None, examples=HERE / 'examples')
except MelanomaError as e: sys.exit(f'melanoma demo: {e}')

if __name__ == '__main__':
    launch(demo, host=os.environ.get('GRADIO_SERVER_NAME', '127.0.0.1'), port=int(os.environ.get('GRADIO_SERVER_PORT', 7860)))
