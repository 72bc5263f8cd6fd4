"""The baseline recipe as a PyTorch user writes it: ``nn.Sequential``, ``torch.optim.Adam``,
``nn.CrossEntropyLoss``, the data as tensors indexed by a fresh ``torch.randperm`` per epoch."""

import time

import torch
from torch import nn

from backends.plain import common

args = common.parser(__doc__).parse_args()
data = common.load(args)
torch.manual_seed(args.seed)
x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
model = nn.Sequential(
    nn.Linear(x.shape[1], common.HIDDEN), nn.ReLU(), nn.Linear(common.HIDDEN, common.N_CLASSES)
)
optimizer = torch.optim.Adam(
    model.parameters(),
    lr=common.LEARNING_RATE,
    betas=(common.BETA_1, common.BETA_2),
    eps=common.EPSILON,
)
loss_fn = nn.CrossEntropyLoss()

for epoch in range(1, args.epochs + 1):
    common.next_epoch(args)
    start = time.perf_counter()
    model.train()
    total_loss, correct = 0.0, 0
    perm = torch.randperm(len(x))
    for i in range(0, len(x), common.BATCH_SIZE):
        idx = perm[i : i + common.BATCH_SIZE]
        xb, yb = x[idx], y[idx]
        optimizer.zero_grad()
        logits = model(xb)
        loss = loss_fn(logits, yb)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(yb)
        correct += (logits.argmax(1) == yb).sum().item()
    common.emit(epoch=epoch, seconds=time.perf_counter() - start)

model.eval()
with torch.no_grad():
    predicted = model(torch.from_numpy(data.x_test)).argmax(1).numpy()
common.emit(test_accuracy=float((predicted == data.y_test).mean()))
