package dev.loadstone.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.Partition;
import dev.loadstone.store.PartitionRules;
import dev.loadstone.store.VarStore;
import dev.loadstone.store.Variable;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * A rank's slice of a remote checkpoint: the same values as from the local file, and only the
 * slice's bytes fetched (counted by a proxy in front of the server).
 */
class RemotePartitionTest {
  private static TensorView bf16(String name, long[] shape, Random random) {
    short[] values = new short[(int) (shape[0] * shape[1])];
    for (int i = 0; i < values.length; i++) {
      values[i] = (short) (Float.floatToRawIntBits(random.nextFloat() - 0.5f) >>> 16);
    }
    return TensorView.of(name, DType.BF16, shape, MemorySegment.ofArray(values));
  }

  @Test
  void aRemoteSliceFetchesOnlyItsBytes() throws IOException {
    Optional<Nginx> server = Nginx.get();
    assumeTrue(server.isPresent(), () -> "no nginx: " + Nginx.unavailable());
    Nginx nginx = server.get();
    String base = "t-" + UUID.randomUUID();
    Path dir = Files.createDirectories(nginx.root().resolve(base));
    Random random = new Random(2);
    SafeTensorsWriter.write(dir.resolve("model.safetensors"), null, List.of(
        bf16("model.layers.0.self_attn.q_proj.weight", new long[] {96, 512}, random),
        bf16("model.layers.0.self_attn.o_proj.weight", new long[] {24, 2048}, random),
        bf16("model.layers.0.mlp.gate_up_proj.weight", new long[] {48, 64}, random),
        bf16("model.norm.weight", new long[] {1, 512}, random)));
    for (int world : new int[] {2, 3}) {
      for (int rank = 0; rank < world; rank++) {
        Partition partition = new Partition(rank, world, PartitionRules.llama());
        LoadOptions options = LoadOptions.defaults().withThreads(2).withPartition(partition).withCreateDType(DType.F32);
        try (FaultProxy proxy = new FaultProxy("127.0.0.1", nginx.url(""));
             Checkpoint remote = Checkpoint.open(proxy.url(base + "/model.safetensors").toString(),
                 RemoteCheckpointTest.options(nginx));
             Checkpoint local = Checkpoint.open(dir.resolve("model.safetensors"));
             VarStore expected = VarStore.fromCheckpoint(local, options);
             VarStore actual = new VarStore()) {
          long opened = proxy.bodyBytesSent();
          long slices = 0;
          for (Variable variable : expected.variables()) {
            actual.root().zeros(variable.name(), variable.dtype(), variable.shape());
            slices += DType.BF16.byteSize(variable.elementCount());
          }
          LoadReport report = actual.load(remote, options);
          assertEquals(slices, report.bytesRead(), report.summary());
          assertEquals(slices, proxy.bodyBytesSent() - opened, "bytes fetched for rank " + rank + " of " + world);
          assertTrue(slices < 96 * 512 * 2 + 24 * 2048 * 2, "less than the tensors");
          for (Variable variable : expected.variables()) {
            assertEquals(-1, variable.segment().mismatch(actual.variable(variable.name()).segment()), variable.name());
          }
        }
      }
    }
  }
}
