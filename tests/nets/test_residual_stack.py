import pytest
import torch
import torch.nn.functional as F

from vqvae.nets import ResidualStack


def test_block_is_relu_conv3x3_relu_conv1x1_added_to_input():
    torch.manual_seed(0)
    stack = ResidualStack(channels=4, num_layers=1, hidden=3)
    x = torch.randn(2, 4, 5, 6)
    conv3, conv1 = stack.layers[0].branch[1], stack.layers[0].branch[3]
    inner = F.conv2d(torch.relu(x), conv3.weight, conv3.bias, padding=1)
    expected = torch.relu(x + F.conv2d(torch.relu(inner), conv1.weight, conv1.bias))
    torch.testing.assert_close(stack(x), expected)
    assert conv3.weight.shape == (3, 4, 3, 3) and conv1.weight.shape == (4, 3, 1, 1)


def test_stack_of_silent_blocks_is_a_final_relu():
    stack = ResidualStack(channels=4, num_layers=2, hidden=8)
    with torch.no_grad():
        for block in stack.layers:
            block.branch[3].weight.zero_()
            block.branch[3].bias.zero_()
    x = torch.randn(1, 4, 3, 3)
    torch.testing.assert_close(stack(x), torch.relu(x))


def test_blocks_are_applied_in_sequence_not_in_parallel():
    torch.manual_seed(1)
    stack = ResidualStack(channels=2, num_layers=2, hidden=4)
    x = torch.randn(1, 2, 4, 4)
    sequential = stack.layers[1](stack.layers[0](x))
    torch.testing.assert_close(stack(x), torch.relu(sequential))


def test_stack_does_not_modify_its_input():
    stack = ResidualStack(channels=2, num_layers=2, hidden=4)
    x = torch.randn(1, 2, 4, 4)
    before = x.clone()
    stack(x)
    assert torch.equal(x, before)


def test_negative_layer_count_is_rejected():
    with pytest.raises(ValueError, match="num_layers"):
        ResidualStack(channels=2, num_layers=-1, hidden=4)


def test_one_dimensional_blocks_are_the_same_over_a_sequence():
    torch.manual_seed(2)
    stack = ResidualStack(channels=4, num_layers=1, hidden=3, dims=1)
    x = torch.randn(2, 4, 7)
    conv3, conv1 = stack.layers[0].branch[1], stack.layers[0].branch[3]
    inner = F.conv1d(torch.relu(x), conv3.weight, conv3.bias, padding=1)
    expected = torch.relu(x + F.conv1d(torch.relu(inner), conv1.weight, conv1.bias))
    torch.testing.assert_close(stack(x), expected)
    assert conv3.weight.shape == (3, 4, 3)
    with pytest.raises(ValueError, match="dims"):
        ResidualStack(channels=4, num_layers=1, hidden=3, dims=3)
