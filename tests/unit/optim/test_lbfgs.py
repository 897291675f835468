"""LBFGS with weight decay as an L2 term of its objective."""

from __future__ import annotations

import torch

from lightning_cnn.optim import (
    build_optimizer,
)


def test_lbfgs_weight_decay_is_an_l2_term_on_weights_only():

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = build_optimizer("lbfgs", model, lr=1.0, weight_decay=0.5)
    assert opt.l2 == 0.5 and [p is model.weight for p in opt._l2_params] == [True]
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    for _ in range(20):
        opt.step(closure)
    # At the optimum of CE + 0.25 ||W||^2 the gradient of the objective vanishes: dCE/dW = -0.5 W.
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    torch.testing.assert_close(model.weight.grad, -0.5 * model.weight.detach(), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.bias.grad, torch.zeros(3), atol=1e-4, rtol=0)  # the bias is not penalized
