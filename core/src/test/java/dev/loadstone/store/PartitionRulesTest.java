package dev.loadstone.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The rules and the shares they give, apart from any load. */
class PartitionRulesTest {
  @Test
  void unevenSizesSplitAsArraySplitDoes() {
    PartitionRules rules = PartitionRules.none().with("w$", Split.along(0));
    long[] expected = {8, 7, 7, 7};   // numpy.array_split(range(29), 4)
    long from = 0;
    for (int rank = 0; rank < 4; rank++) {
      Partition.Slice slice = new Partition(rank, 4, rules).sliceOf("w", new long[] {29, 3}).orElseThrow();
      assertEquals(List.of(new Partition.Range(from, from + expected[rank])), slice.ranges());
      assertArrayEquals(new long[] {expected[rank], 3}, slice.shape());
      from += expected[rank];
    }
  }

  @Test
  void unitsKeepHeadsWhole() {
    // 5 heads of 4 rows over 2 ranks: 3 heads and 2 heads, never half a head.
    PartitionRules rules = PartitionRules.none().with("q$", Split.along(0).inUnitsOf(4));
    assertEquals(List.of(new Partition.Range(0, 12)),
        new Partition(0, 2, rules).sliceOf("q", new long[] {20, 8}).orElseThrow().ranges());
    assertEquals(List.of(new Partition.Range(12, 20)),
        new Partition(1, 2, rules).sliceOf("q", new long[] {20, 8}).orElseThrow().ranges());
  }

  @Test
  void unmatchedAndReplicatedTensorsAndAWorldOfOneAreWhole() {
    Partition partition = new Partition(1, 4, PartitionRules.llama());
    assertEquals(Optional.empty(), partition.sliceOf("model.norm.weight", new long[] {2048}));
    assertEquals(Optional.empty(), partition.sliceOf("model.layers.0.self_attn.o_proj.bias", new long[] {2048}));
    assertArrayEquals(new long[] {2048, 512},
        partition.shapeOf("model.layers.3.self_attn.o_proj.weight", new long[] {2048, 2048}));
    assertArrayEquals(new long[] {128256 / 4, 2048}, partition.shapeOf("model.embed_tokens.weight", new long[] {128256, 2048}));
    assertArrayEquals(new long[] {8192, 2048},
        new Partition(0, 1, PartitionRules.llama()).shapeOf("model.layers.0.mlp.up_proj.weight", new long[] {8192, 2048}));
  }

  @Test
  void theFileFormatRoundTripsAndNamesTheLineOfAMistake() {
    PartitionRules rules = PartitionRules.llama(32, 8, 64).with("\\.experts\\.", Split.replicate());
    assertEquals(rules, PartitionRules.parse(rules.toString(), "text"));
    assertEquals(rules.toString(), PartitionRules.parse(rules.toString(), "text").toString());
    PartitionRules parsed = PartitionRules.parse("""
        # comment

        a  dim1/8
        b fused:dim0:ratio:1,2
        c fused:DIM0:4,4
        """, "tp.rules");
    assertEquals(List.of("a dim1/8", "b fused:dim0:ratio:1,2", "c fused:dim0:4,4"),
        parsed.rules().stream().map(PartitionRules.Rule::toString).toList());
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
        () -> PartitionRules.parse("a dim0\nb fused:dim0:4,0\n", "tp.rules"));
    assertTrue(bad.getMessage().startsWith("tp.rules: line 2: "), bad.getMessage());
    IllegalArgumentException regex = assertThrows(IllegalArgumentException.class,
        () -> PartitionRules.parse("(unclosed dim0", "tp.rules"));
    assertTrue(regex.getMessage().contains("tp.rules: line 1: the pattern '(unclosed' is not a regular expression"),
        regex.getMessage());
    assertThrows(IllegalArgumentException.class, () -> PartitionRules.parse("a dim0 extra", "tp.rules"));
    assertThrows(IllegalArgumentException.class, () -> new Partition(2, 2, PartitionRules.none()));
  }

  @Test
  void theFirstMatchingRuleDecides() {
    PartitionRules rules = PartitionRules.none().with("\\.k_proj\\.", Split.replicate()).with("_proj\\.weight$", Split.along(0));
    assertEquals(Split.replicate(), rules.ruleFor("layers.0.k_proj.weight").orElseThrow().split());
    assertEquals(Split.along(0), rules.ruleFor("layers.0.q_proj.weight").orElseThrow().split());
    assertEquals(Optional.empty(), rules.ruleFor("norm.weight"));
  }
}
