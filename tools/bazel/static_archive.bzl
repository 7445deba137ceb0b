"""static_archive: one installable static library from cc_library targets.

Bazel gives each cc_library its own archive; a user of an installed
libhakmem.a needs one. The rule links every archive of the deps' transitive
closure (PIC objects where the toolchain has them) into one relocatable
object with `ld -r --whole-archive` and puts that object alone in the
archive. A program that references any of it (malloc does) therefore links
all of it, as a whole-archive link of //:hakmem would: the statistics at exit
and the crash report, which nothing calls directly, come along.
"""

load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain")

def _static_archive_impl(ctx):
    cc_toolchain = find_cpp_toolchain(ctx)
    archives = []
    for dep in ctx.attr.deps:
        for linker_input in dep[CcInfo].linking_context.linker_inputs.to_list():
            for lib in linker_input.libraries:
                archive = lib.pic_static_library or lib.static_library
                if archive != None and archive not in archives:
                    archives.append(archive)
    obj = ctx.actions.declare_file(ctx.label.name + ".o")
    out = ctx.actions.declare_file(ctx.attr.out)
    args = ctx.actions.args()
    args.add(cc_toolchain.ld_executable)
    args.add(cc_toolchain.ar_executable)
    args.add(obj)
    args.add(out)
    args.add_all(archives)
    ctx.actions.run_shell(
        inputs = depset(archives, transitive = [cc_toolchain.all_files]),
        outputs = [obj, out],
        arguments = [args],
        command = "\n".join([
            "set -e",
            'ld="$1"; ar="$2"; obj="$3"; out="$4"; shift 4',
            '"$ld" -r -o "$obj" --whole-archive "$@" --no-whole-archive',
            'rm -f "$out"',
            '"$ar" rcsD "$out" "$obj"',
        ]),
        mnemonic = "StaticArchive",
        progress_message = "Archiving %s" % out.short_path,
    )
    return [DefaultInfo(files = depset([out]))]

static_archive = rule(
    implementation = _static_archive_impl,
    attrs = {
        "deps": attr.label_list(providers = [CcInfo]),
        "out": attr.string(mandatory = True),
        "_cc_toolchain": attr.label(default = Label("@bazel_tools//tools/cpp:current_cc_toolchain")),
    },
    toolchains = ["@bazel_tools//tools/cpp:toolchain_type"],
    incompatible_use_toolchain_transition = True,
)
