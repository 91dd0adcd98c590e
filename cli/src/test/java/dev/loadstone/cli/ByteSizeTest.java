package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class ByteSizeTest {
  @Test
  void decimalAndBinaryUnits() throws UsageException {
    assertEquals(5_000_000_000L, ByteSize.parse("SIZE", "5GB"));
    assertEquals(500_000_000L, ByteSize.parse("SIZE", "500MB"));
    assertEquals(2L << 30, ByteSize.parse("SIZE", "2GiB"));
    assertEquals(1_000_000L, ByteSize.parse("SIZE", "1000000"));
    assertEquals(1_500_000_000L, ByteSize.parse("SIZE", "1.5GB"));
    assertEquals(10_240L, ByteSize.parse("SIZE", "10 kib"));
    assertEquals(7L, ByteSize.parse("SIZE", "7b"));
    assertEquals(3_000L, ByteSize.parse("SIZE", "3KB"));
    assertEquals(2_000_000_000_000L, ByteSize.parse("SIZE", "2tb"));
    assertEquals(3L << 20, ByteSize.parse("SIZE", "3MiB"));
    assertEquals(Long.MAX_VALUE, ByteSize.parse("SIZE", Long.toString(Long.MAX_VALUE)));
  }

  @Test
  void rejected() {
    for (String text : new String[] {"", "GB", "5 G", "5XB", "-1", "0", "0GB", "1.5", "0.5KiB1", "1e9",
        "9223372036854775808", "10000000TB"}) {
      assertThrows(UsageException.class, () -> ByteSize.parse("SIZE", text), text);
    }
  }
}
