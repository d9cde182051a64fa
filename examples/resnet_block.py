"""A small PyTorch model of the kind torch2ms migrates: a residual block with batch norm."""
import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, channels, momentum=0.01):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, momentum=momentum)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.1, track_running_stats=False)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + x)


def freeze_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
            m.weight.requires_grad = False


if __name__ == "__main__":
    block = BasicBlock(8)
    y = block(torch.randn(2, 8, 4, 4))
    print(y.shape, block.bn1.running_mean[:3])
