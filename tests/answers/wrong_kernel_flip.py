"""Classic mistake: Conv2d's kernel flipped in the backward pass (it is a cross-correlation)."""
import correct


def conv2d_grad_input(x, W, g, stride, padding):
    return correct.conv2d_grad_input(x, W[:, :, ::-1, ::-1], g, stride, padding)


def conv2d_grad_weight(x, W, g, stride, padding):
    return correct.conv2d_grad_weight(x, W, g, stride, padding)[:, :, ::-1, ::-1]
