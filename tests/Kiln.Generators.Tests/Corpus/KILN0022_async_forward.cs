// Model methods run inside the compiled step; they cannot be asynchronous.
using System.Threading.Tasks;
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim, 1);
    public async Task<Tensor> Forward([Shape("B", "dim")] Tensor x) // expect: KILN0022 "async"
    {
        await Task.Yield();
        return head.Forward(x);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(x), y);
}
