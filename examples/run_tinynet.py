"""Build TinyNet, classify a batch of random images, and (with --save PATH) save its weights."""
import argparse

import torch

from tinynet.model import TinyNet


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--save", metavar="PATH", help="save the model's state dict there")
    args = parser.parse_args()

    model = TinyNet()
    model.eval()
    images = torch.randn(4, 3, 32, 32)
    logits = model(images)
    print("logits of shape", tuple(logits.shape))
    if args.save:
        torch.save(model.state_dict(), args.save)
        print("saved", args.save)


if __name__ == "__main__":
    main()
