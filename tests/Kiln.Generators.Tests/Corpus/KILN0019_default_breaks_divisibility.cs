// The defaults do not divide: construction with them would throw.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 10, int heads = 4) // expect: KILN0019 "heads"
{
    Linear qkv = new(dim, dim);
    [Loss] public Tensor Loss([Shape("B", "T", "dim")] Tensor x)
    {
        var h = Ops.Reshape(qkv.Forward(x), x.Dim(0), x.Dim(1), heads, dim / heads);
        return Ops.Mean(Ops.Square(h));
    }
}
