using System;
using System.Linq;
using Kiln.Runtime.Collectives;
using Xunit;

namespace Kiln.Runtime.Tests;

/// <summary>The simulated data × tensor × pipeline mesh: which ranks share each axis, and point-to-point messages on an axis.</summary>
public sealed class MeshTests
{
    [Fact]
    public void Each_axis_group_holds_the_ranks_that_differ_only_on_that_axis()
    {
        const int dp = 2, tp = 3, pp = 2;
        var seen = new (int D, int S, int T, double DataSum, double TensorSum, double PipeSum)[dp * tp * pp];
        MeshRank.Simulate(dp, tp, pp, mesh =>
        {
            int w = mesh.World.Rank;
            Assert.Equal((dp, tp, pp), (mesh.Data.Size, mesh.Tensor.Size, mesh.Pipeline.Size));
            Assert.Equal(("data", "tensor", "pipeline"), (mesh.Data.Axis, mesh.Tensor.Axis, mesh.Pipeline.Axis));
            Assert.Equal(w, MeshRank.WorldRank(mesh.Data.Rank, mesh.Pipeline.Rank, mesh.Tensor.Rank, tp, pp));
            // Summing the world ranks over each axis shows which ranks are in the group.
            seen[w] = (mesh.Data.Rank, mesh.Pipeline.Rank, mesh.Tensor.Rank, mesh.Data.AllReduceSum(w), mesh.Tensor.AllReduceSum(w), mesh.Pipeline.AllReduceSum(w));
        });
        for (int w = 0; w < seen.Length; w++)
        {
            var (d, s, t, dataSum, tensorSum, pipeSum) = seen[w];
            Assert.Equal(Enumerable.Range(0, dp).Sum(x => MeshRank.WorldRank(x, s, t, tp, pp)), dataSum);
            Assert.Equal(Enumerable.Range(0, tp).Sum(x => MeshRank.WorldRank(d, s, x, tp, pp)), tensorSum);
            Assert.Equal(Enumerable.Range(0, pp).Sum(x => MeshRank.WorldRank(d, x, t, tp, pp)), pipeSum);
        }
        // Tensor ranks are consecutive world ranks.
        Assert.Equal(new[] { 0, 1, 2 }, Enumerable.Range(0, tp).Select(t => MeshRank.WorldRank(0, 0, t, tp, pp)));
    }

    [Fact]
    public void Point_to_point_messages_arrive_in_order_and_a_missing_or_misshapen_one_is_named()
    {
        InProcessGroup.Run(2, comm =>
        {
            if (comm.Rank == 0)
            {
                comm.Send(new float[] { 1, 2 }, 1);
                comm.Send(new float[] { 3 }, 1);
            }
            else
            {
                var a = new float[2]; var b = new float[1];
                comm.Receive(a, 0);
                comm.Receive(b, 0);
                Assert.Equal(new float[] { 1, 2, 3 }, a.Concat(b));
                Assert.Equal(0, comm.BytesSent);
            }
        }, "pipeline");

        var comms = InProcessGroup.Create(2, "pipeline", TimeSpan.FromMilliseconds(200));
        var timeout = Assert.Throws<CollectiveTimeoutException>(() => comms[1].Receive(new float[4], 0));
        Assert.Equal(new[] { 0 }, timeout.MissingRanks);
        Assert.Contains("rank 0 has not sent it", timeout.Message);
        comms[0].Send(new float[3], 1);
        var mismatch = Assert.Throws<CollectiveMismatchException>(() => comms[1].Receive(new float[4], 0));
        Assert.Contains("expects 4 values from rank 0, which sent 3", mismatch.Message);
    }
}
