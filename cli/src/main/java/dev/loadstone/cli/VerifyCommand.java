package dev.loadstone.cli;

import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.SafeTensorsException;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;

/**
 * {@code loadstone verify PATH}: checks the file against every rule of the format. Valid: one
 * {@code OK} line on stdout, exit 0. Invalid: one {@code INVALID} line on stderr naming the
 * file, the reason code and the rule, exit 1.
 */
final class VerifyCommand implements Command {

  @Override
  public String name() {
    return "verify";
  }

  @Override
  public String synopsis() {
    return "PATH";
  }

  @Override
  public String summary() {
    return "check that a .safetensors file follows every rule of the format";
  }

  @Override
  public String description() {
    return """
        Checks the header (length, UTF-8, JSON, metadata, every tensor entry) and the layout of
        the data (tensors in order, no gaps, no overlaps, no trailing bytes).
        Valid: prints "OK PATH: N tensors, B bytes" on stdout and exits 0.
        Invalid: prints "INVALID PATH: REASON: ... (rule: ...)" on stderr and exits 1.
        """;
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws IOException, UsageException {
    Path path = Inputs.safetensorsFile(args.requireOne("PATH"));
    try (SafeTensors file = SafeTensors.open(path)) {
      long total = 0;
      for (TensorView tensor : file.tensors()) {
        total += tensor.byteSize();
      }
      int count = file.tensors().size();
      out.println("OK " + Text.oneLine(path.toString()) + ": " + count
          + (count == 1 ? " tensor, " : " tensors, ") + Text.grouped(total) + " bytes");
      return Main.EXIT_OK;
    } catch (SafeTensorsException e) {
      err.println("INVALID " + Text.describe(e));
      return Main.EXIT_INVALID;
    }
  }
}
