import time, sys, torch
from monai.networks.nets import UNet
from monai.losses import DiceCELoss
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
def mk(r):
    m = UNet(3, 1, 3, channels=(16,32,64,128,256), strides=(2,2,2,2), num_res_units=r).to(memory_format=torch.channels_last_3d)
    return m, torch.optim.AdamW(m.parameters(), 3e-3)
nets = {r: mk(r) for r in (2, 1)}
x = torch.randn(8,1,32,48,32).to(memory_format=torch.channels_last_3d); y = torch.randint(0,3,(8,1,32,48,32))
loss = DiceCELoss(to_onehot_y=True, softmax=True)
def steps(r, n):
    m, o = nets[r]; t = time.perf_counter()
    for _ in range(n):
        o.zero_grad(); l = loss(m(x), y); l.backward(); o.step()
    return (time.perf_counter() - t) / n
for r in nets: steps(r, 3)
res = {2: [], 1: []}
for rep in range(4):
    for r in ((2, 1) if rep % 2 == 0 else (1, 2)): res[r].append(steps(r, 10))
for r in res: print(sys.argv[1], 'threads, res units', r, ['%.3f' % v for v in res[r]], 's/step')
print('ratio', sum(res[2]) / sum(res[1]))
