"Tests for melanoma.explain: Grad-CAM shape/range, overlay, heat on the lesion."
import numpy as np
import torch
from PIL import Image
from melanoma.explain import gradcam, overlay
from melanoma.model import MelanomaModel


class TinyModel(MelanomaModel):
    "A `MelanomaModel` whose folds are analytic networks: the feature map is darkness, the score its mean."
    def __init__(self, nfolds=2):
        nets = []
        for _ in range(nfolds):
            conv = torch.nn.Conv2d(3, 1, 1)
            with torch.no_grad(): conv.weight.fill_(-1/3); conv.bias.fill_(1.)  # darkness = 1 - mean(rgb)
            nets.append(torch.nn.Sequential(conv, torch.nn.ReLU(inplace=True)).eval().requires_grad_(False))
        super().__init__({'arch': 'tiny', 'n_out': 1, 'size': 32, 'mean': [0.] * 3, 'std': [1.] * 3}, nets, 'cpu')
    def cam_layer(self, net): return net[0]
    def melanoma_logit(self, net, x, meta=None): return net(x).mean((1, 2, 3))


def blob_image(w=80, h=60, r=12):
    yy, xx = np.mgrid[:h, :w]
    a = np.full((h, w, 3), (220, 180, 160), np.uint8)
    a[(yy - h/2)**2 + (xx - w/2)**2 < r**2] = (60, 30, 20)
    return Image.fromarray(a)


def centre_vs_corners(heat, frac=0.25):
    h, w = heat.shape; ch, cw = int(h*frac), int(w*frac)
    centre = heat[h//2-ch//2:h//2+ch//2, w//2-cw//2:w//2+cw//2].mean()
    corners = np.mean([heat[:ch, :cw].mean(), heat[:ch, -cw:].mean(), heat[-ch:, :cw].mean(), heat[-ch:, -cw:].mean()])
    return centre, corners


def test_gradcam_shape_range_and_lesion():
    img = blob_image()
    heat = gradcam(TinyModel(), img)
    assert heat.shape == (img.height, img.width)
    assert heat.min() >= 0 and heat.max() <= 1
    c, k = centre_vs_corners(heat)
    assert c > 0.9 and k < 0.5


def test_gradcam_one_fold_and_overlay():
    img = blob_image(64, 64)
    heat = gradcam(TinyModel(3), img, fold=2)
    ov = overlay(img, heat)
    assert ov.size == img.size and ov.mode == 'RGB'
    assert overlay(img, heat[::4, ::4]).size == img.size


def test_explain_gallery(sample_data, tmp_path):
    "The gallery from a run's out-of-fold predictions, and from predicting one validation fold."
    import pandas as pd
    from melanoma.model import create_model, save_model
    from melanoma.data import read_dataset
    from melanoma.folds import make_folds, save_folds
    from melanoma.explain import explain_cli
    import shutil
    data = tmp_path / 'data'
    shutil.copytree(sample_data, data)
    df = read_dataset(data)
    save_folds(make_folds(df, 2), data)
    torch.manual_seed(0)
    save_model([create_model('resnet10t', pretrained=False) for _ in range(2)], tmp_path / 'run', {'size': 32})
    pd.DataFrame({'image_id': df.image_id, 'target': df.target, 'fold': np.arange(len(df)) % 2,
                  'pred': np.linspace(0, 1, len(df))}).to_csv(tmp_path / 'run' / 'oof.csv', index=False)
    explain_cli(str(tmp_path / 'run'), str(data), out=str(tmp_path / 'oof.png'), n=2)
    assert Image.open(tmp_path / 'oof.png').size[0] > 500
    (tmp_path / 'run' / 'oof.csv').unlink()
    explain_cli(str(tmp_path / 'run'), str(data), out=str(tmp_path / 'f1.png'), n=1, fold=1)
    assert (tmp_path / 'f1.png').stat().st_size > 0


def test_overlay_weights_colour_by_heat():
    "Cold pixels keep their colour, the hottest get `alpha` of the colormap: the lesion stays visible under the heat."
    img = blob_image(64, 48)
    heat = np.zeros((48, 64), np.float32); heat[20:28, 28:36] = 1
    a, o = np.asarray(overlay(img, heat), int), np.asarray(img, int)
    assert (a[heat == 0] == o[heat == 0]).all()
    assert np.abs(a - o).max() <= 0.5 * 255 + 1 and a[24, 32, 0] > o[24, 32, 0] - 1
    small = overlay(img, heat[::8, ::8], alpha=0.4)  # a coarse CAM is upsampled to the image
    assert small.size == img.size and np.abs(np.asarray(small, int) - o).max() <= 0.4 * 255 + 1
