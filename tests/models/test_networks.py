import pytest
import torch

from neuroseg.models import ResUNet, build_classifier


def test_resunet_keeps_the_slice_size_and_gives_one_logit_map():
    net = ResUNet(in_channels=3, features=4, depth=4).eval()
    assert net(torch.zeros(2, 3, 64, 48)).shape == (2, 1, 64, 48)


def test_resunet_has_four_levels_of_doubling_features():
    net = ResUNet(in_channels=3, features=8, depth=4).eval()
    widths = []
    for block in net.encoders:
        block.register_forward_hook(lambda module, inputs, output: widths.append(output.shape[1]))
    net(torch.zeros(1, 3, 32, 32))
    assert widths == [8, 16, 32, 64]
    assert len(net.decoders) == 4 and net.head.kernel_size == (1, 1)


@pytest.mark.parametrize("kwargs", [{"features": 0}, {"depth": 0}, {"in_channels": 0}])
def test_resunet_rejects_bad_hyper_parameters(kwargs):
    with pytest.raises(ValueError):
        ResUNet(**kwargs)


def test_classifier_gives_one_logit_per_slice():
    net = build_classifier(in_channels=3, features=4).eval()
    assert net(torch.zeros(5, 3, 64, 64)).shape == (5, 1)


def test_avgmax_classifier_sees_a_small_bright_spot_that_average_pooling_dilutes():
    from neuroseg.models.classifier import AvgMaxPool

    features = torch.zeros(2, 3, 8, 8)
    features[1, :, 4, 4] = 1.0  # one cell of 64
    pooled = AvgMaxPool()(features)
    assert pooled.shape == (2, 6, 1, 1)
    assert pooled[1, 3:].flatten().tolist() == [1.0, 1.0, 1.0]  # the max half keeps it whole
    net = build_classifier(in_channels=3, features=4, pool="avgmax").eval()
    assert net(torch.zeros(5, 3, 64, 64)).shape == (5, 1)


def test_classifier_rejects_an_unknown_pool():
    with pytest.raises(ValueError, match="pool"):
        build_classifier(pool="median")


def test_classifier_without_stem_max_pool_keeps_finer_feature_maps():
    sizes = {}
    for stem in (True, False):
        net = build_classifier(in_channels=3, features=4, stem_max_pool=stem).eval()
        net.layer1.register_forward_hook(lambda m, i, out, stem=stem: sizes.__setitem__(stem, out.shape[-1]))
        assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 1)
    assert sizes == {True: 16, False: 32}


def test_strided_resunet_gives_a_full_size_mask_and_one_slice_logit():
    from neuroseg.models.strided import StridedResUNet

    net = StridedResUNet(in_channels=3, features=4, depth=4).eval()
    mask, slice_logits = net(torch.zeros(2, 3, 64, 96))
    assert mask.shape == (2, 1, 64, 96) and slice_logits.shape == (2, 1)


def test_strided_resunet_keeps_full_resolution_detail_in_its_output():
    """The full-resolution branch reaches the output: a one-pixel change moves that pixel's logit."""
    from neuroseg.models.strided import StridedResUNet

    torch.manual_seed(0)
    net = StridedResUNet(in_channels=1, features=4, depth=2).eval()
    x = torch.rand(1, 1, 32, 32)
    y = x.clone()
    y[0, 0, 17, 9] += 1.0
    with torch.no_grad():
        change = (net(y)[0] - net(x)[0]).abs()[0, 0]
    assert change[17, 9] > 0 and change[17, 9] >= change.max() * 0.2


@pytest.mark.parametrize("kwargs", [{"features": 0}, {"depth": 0}, {"full_res_features": 0}])
def test_strided_resunet_rejects_bad_hyper_parameters(kwargs):
    from neuroseg.models.strided import StridedResUNet

    with pytest.raises(ValueError):
        StridedResUNet(**kwargs)


def test_strided_resunet_refine_is_the_concatenated_1x1_conv_after_up_sampling():
    """The decoder's split refine gives what its definition says: up-sample, concatenate with the
    full-resolution features, 1x1 conv, ReLU (on random weights, biases and an odd-sized input)."""
    import torch.nn.functional as F

    from neuroseg.models.strided import StridedResUNet

    torch.manual_seed(0)
    net = StridedResUNet(in_channels=3, features=4, depth=2).eval()
    for parameter in net.refine.parameters():
        torch.nn.init.normal_(parameter)
    x, h = torch.randn(2, 3, 40, 24), torch.randn(2, 4, 20, 12)
    with torch.no_grad():
        up = F.interpolate(h, size=x.shape[-2:], mode="bilinear", align_corners=False)
        expected = net.refine(torch.cat([up, net.full_res(x)], dim=1))
        torch.testing.assert_close(net._refine(x, h), expected, rtol=1e-5, atol=1e-5)
