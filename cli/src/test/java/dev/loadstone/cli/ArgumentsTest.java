package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class ArgumentsTest {
  private static final List<Option> OPTIONS = List.of(
      Option.flag("--json", "json"),
      Option.flag("--help", "help"),
      Option.valued("--model", "PATH", "model"),
      Option.repeatable("--include", "GLOB", "include"));

  private static Arguments parse(String... args) throws UsageException {
    return Arguments.parse(List.of(args), OPTIONS);
  }

  @Test
  void positionalFlagsAndOptions() throws UsageException {
    Arguments args = parse("a", "--json", "b", "--model", "m.safetensors");
    assertEquals(List.of("a", "b"), args.positional());
    assertTrue(args.has("--json"));
    assertFalse(args.has("--help"));
    assertEquals(Optional.of("m.safetensors"), args.value("--model"));
  }

  @Test
  void aRepeatableOptionKeepsEveryValueInOrder() throws UsageException {
    Arguments args = parse("--include", "*.json", "x", "--include=*.safetensors", "--include", "*.json");
    assertEquals(List.of("*.json", "*.safetensors", "*.json"), args.values("--include"));
    assertEquals(List.of("x"), args.positional());
    assertEquals(List.of(), parse("x").values("--include"));
    assertEquals(Optional.empty(), args.value("--include"));
  }

  @Test
  void optionWithEquals() throws UsageException {
    Arguments args = parse("--model=x=y.safetensors");
    assertEquals(Optional.of("x=y.safetensors"), args.value("--model"));
    assertEquals(Optional.of(""), parse("--model=").value("--model"));
    assertEquals(Optional.empty(), parse().value("--model"));
  }

  @Test
  void doubleDashEndsOptions() throws UsageException {
    Arguments args = parse("--json", "--", "--model", "-x");
    assertEquals(List.of("--model", "-x"), args.positional());
    assertEquals(Optional.empty(), args.value("--model"));
  }

  @Test
  void shortHelpAndLoneDash() throws UsageException {
    Arguments args = parse("-h", "-");
    assertTrue(args.has("--help"));
    assertEquals(List.of("-"), args.positional());
  }

  @Test
  void errors() {
    assertEquals("unknown option '--frob'", assertThrows(UsageException.class, () -> parse("--frob")).getMessage());
    assertEquals("unknown option '--frob'", assertThrows(UsageException.class, () -> parse("--frob=1")).getMessage());
    assertEquals("unknown option '-x'", assertThrows(UsageException.class, () -> parse("-x")).getMessage());
    assertEquals("option '--json' takes no value",
        assertThrows(UsageException.class, () -> parse("--json=yes")).getMessage());
    assertEquals("option '--model' needs a value: --model PATH",
        assertThrows(UsageException.class, () -> parse("--model")).getMessage());
    assertEquals("option '--model' is given more than once",
        assertThrows(UsageException.class, () -> parse("--model", "a", "--model=b")).getMessage());
  }

  @Test
  void requirePositionals() throws UsageException {
    assertEquals("x", parse("x").requireOne("PATH"));
    assertEquals("missing argument PATH",
        assertThrows(UsageException.class, () -> parse().requireOne("PATH")).getMessage());
    assertEquals("unexpected argument 'y'",
        assertThrows(UsageException.class, () -> parse("x", "y").requireOne("PATH")).getMessage());
    assertEquals("unexpected argument 'x'", assertThrows(UsageException.class, () -> parse("x").require()).getMessage());
  }
}
