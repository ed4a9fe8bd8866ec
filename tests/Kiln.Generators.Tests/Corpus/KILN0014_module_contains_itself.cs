// A module holding an instance of its own type would be infinitely deep.
using Kiln;
namespace Corpus;

[Module]
public partial class Tree(int dim)
{
    Linear fc = new(dim, dim);
    Tree child = new(dim); // expect: KILN0014 "Tree"
    public Tensor Forward(Tensor x) => child.Forward(fc.Forward(x));
}

[Model]
public partial class Regressor(int dim = 4)
{
    Tree tree = new(dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(tree.Forward(x));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
