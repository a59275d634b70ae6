package main

// berthd's command line, on the standard flag package.
//
// Why not urfave/cli, as ctr uses: its help printer is built on
// text/template, and text/template calls reflect's MethodByName with names
// known only at run time. A binary that can reach such a call keeps every
// exported method of every type it links, because the linker cannot tell
// which one a template might call. In berthd that was about 2.9 MB of code
// and read-only data (25 MB binary; 20 MB without it, built with the
// grpcnotrace tag, see the Makefile), and the kernel maps nearly all of a
// running daemon's binary: about 2.7 MiB of its resident memory, idle or
// busy. The daemon takes six options and three subcommands, so this file
// does the parsing with package flag and prints urfave/cli's help texts,
// written out, to keep the command line as it was: the same flags and
// aliases, the same help, errors and exit codes (0; 1 for usage errors
// and failed checks; 3 for an unknown help topic). cli_test.go checks
// that no template package is linked again.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/berth-containers/berth/pkg/version"
	"github.com/berth-containers/berth/services/server"
)

// globalFlags are berthd's options, given before any command.
type globalFlags struct {
	config, root, state, address, logLevel, logFormat string
}

// cliContext is what a command's action gets.
type cliContext struct {
	context.Context
	global globalFlags
	json   bool // check --json
	args   []string
}

// exitError ends berthd with code after printing msg (if any) to stderr,
// without the "berthd: " prefix of other errors.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// command is one node of the command tree. Every command has an implicit
// "help" (alias "h") subcommand, as under urfave/cli.
type command struct {
	name     string // full name, "berthd config dump"
	help     string // one-line usage, as in the parent's COMMANDS list
	subs     map[string]*command
	jsonFlag bool // has --json
	action   func(*cliContext) error
}

const helpUsage = "Shows a list of commands or help for one command"

const rootHelp = `NAME:
   berthd - a containerd-compatible container daemon

USAGE:
   berthd [global options] command [command options]

VERSION:
   ` + "%s" + `

COMMANDS:
   config    print berthd's configuration
   check     check that this host can run berthd and its containers
   oci-hook  provides a base for OCI runtime hooks to allow arguments to be injected.
   help, h   ` + helpUsage + `

GLOBAL OPTIONS:
   --config value, -c value     path to the TOML config file; a missing file means the defaults (default: "` + server.DefaultConfigPath + `")
   --root value                 persistent data directory (overrides the config)
   --state value                runtime state directory (overrides the config)
   --address value, -a value    gRPC socket (overrides the config)
   --log-level value, -l value  trace, debug, info, warn, error, fatal or panic
   --log-format value           text or json
   --help, -h                   show help
   --version, -v                print the version
`

const checkDescription = `Checks the kernel, overlayfs (with a real test mount under --root), the
cgroup layout and controllers, runc, the shim binaries, user namespaces,
seccomp, free disk under --root, and that the config and every plugin's
section load. One line per check: "ok|warn|fail: what — why". Exits 1
when any check fails.`

const helpFlagLine = "   --help, -h  show help\n"

// commandHelp renders a command's help as urfave/cli did; usageError is
// the variant printed after "Incorrect Usage", which lists the implicit
// help command even for a command without subcommands.
func commandHelp(name, usage, description, commands, options string, usageError bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "NAME:\n   %s - %s\n\nUSAGE:\n   %s [command options]", name, usage, name)
	if strings.HasSuffix(name, " help") {
		b.WriteString(" [command]")
	}
	b.WriteString("\n\n")
	if description != "" {
		fmt.Fprintf(&b, "DESCRIPTION:\n   %s\n\n", strings.ReplaceAll(description, "\n", "\n   "))
	}
	if commands == "" && usageError {
		commands = "   help, h  " + helpUsage + "\n"
	}
	if commands != "" {
		fmt.Fprintf(&b, "COMMANDS:\n%s\n", commands)
	}
	fmt.Fprintf(&b, "OPTIONS:\n%s", options)
	return b.String()
}

var (
	configDefault = &command{
		name:   "berthd config default",
		help:   "print the default config, with every built-in plugin's section",
		action: runConfigDefault,
	}
	configDump = &command{
		name:   "berthd config dump",
		help:   "print the config berthd would run with: the file, the flags and each plugin's decoded section",
		action: runConfigDump,
	}
	configCommand = &command{
		name: "berthd config",
		help: "print berthd's configuration",
		subs: map[string]*command{"default": configDefault, "dump": configDump},
	}
	checkCommand = &command{
		name:     "berthd check",
		help:     "check that this host can run berthd and its containers",
		jsonFlag: true,
		action:   runCheck,
	}
	ociHookCommand = &command{
		name:   "berthd oci-hook",
		help:   "provides a base for OCI runtime hooks to allow arguments to be injected.",
		action: runOCIHook,
	}
	rootCommand = &command{
		name:   "berthd",
		subs:   map[string]*command{"config": configCommand, "check": checkCommand, "oci-hook": ociHookCommand},
		action: run,
	}
)

// helpText is c's --help; usageError as in commandHelp.
func (c *command) helpText(usageError bool) string {
	switch c {
	case rootCommand:
		return fmt.Sprintf(rootHelp, version.Version)
	case configCommand:
		return commandHelp(c.name, c.help, "",
			"   default  "+configDefault.help+"\n   dump     "+configDump.help+"\n   help, h  "+helpUsage+"\n",
			helpFlagLine, usageError)
	case checkCommand:
		return commandHelp(c.name, c.help, checkDescription, "",
			"   --json      print the config and the checks as JSON (default: false)\n"+helpFlagLine, usageError)
	}
	return commandHelp(c.name, c.help, "", "", helpFlagLine, usageError)
}

// helpHelp is the help of parent's implicit help command. The root's is
// named " help": urfave/cli left its parent's name out.
func helpHelp(parent *command, usageError bool) string {
	name := parent.name + " help"
	if parent == rootCommand {
		name = " help"
	}
	return commandHelp(name, helpUsage, "", "", helpFlagLine, usageError)
}

// topic finds the command whose help "help NAME" under c shows: nil for
// c's own help command, ok false for an unknown name.
func (c *command) topic(name string) (sub *command, ok bool) {
	if name == "help" || name == "h" {
		return nil, true
	}
	sub, ok = c.subs[name]
	return sub, ok
}

// printTopic prints the help "help NAME" under c shows.
func (c *command) printTopic(stdout io.Writer, name string) bool {
	sub, ok := c.topic(name)
	switch {
	case !ok:
		return false
	case sub == nil:
		io.WriteString(stdout, helpHelp(c, false))
	case c == rootCommand && sub.subs != nil:
		// urfave/cli printed only the name and usage of a command with
		// subcommands asked for from the top ("berthd help config").
		fmt.Fprintf(stdout, "NAME:\n   %s - %s\n\nUSAGE:\n   %s [command options]\n\n", sub.name, sub.help, sub.name)
	default:
		io.WriteString(stdout, sub.helpText(false))
	}
	return true
}

// aliased are flags with two names; giving both is an error.
type aliased struct{ long, short string }

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs and refuses both names of one flag.
func parseFlags(fs *flag.FlagSet, args []string, pairs []aliased) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, p := range pairs {
		if set[p.long] && set[p.short] {
			return errors.New("Cannot use two forms of the same flag: " + p.short + " " + p.long)
		}
	}
	return nil
}

// runCLI runs berthd's command line (args without the program name).
func runCLI(args []string, stdout io.Writer) error {
	c := &cliContext{Context: context.Background()}
	g := &c.global
	var help, showVersion bool
	fs := newFlagSet("berthd")
	for _, name := range []string{"config", "c"} {
		fs.StringVar(&g.config, name, server.DefaultConfigPath, "")
	}
	fs.StringVar(&g.root, "root", "", "")
	fs.StringVar(&g.state, "state", "", "")
	for _, name := range []string{"address", "a"} {
		fs.StringVar(&g.address, name, "", "")
	}
	for _, name := range []string{"log-level", "l"} {
		fs.StringVar(&g.logLevel, name, "", "")
	}
	fs.StringVar(&g.logFormat, "log-format", "", "")
	for _, name := range []string{"help", "h"} {
		fs.BoolVar(&help, name, false, "")
	}
	for _, name := range []string{"version", "v"} {
		fs.BoolVar(&showVersion, name, false, "")
	}
	err := parseFlags(fs, args, []aliased{{"config", "c"}, {"address", "a"}, {"log-level", "l"}, {"help", "h"}, {"version", "v"}})
	if err != nil {
		fmt.Fprintf(stdout, "Incorrect Usage: %s\n\n%s", err, rootCommand.helpText(true))
		return err
	}
	rest := fs.Args()
	if help {
		return helpFlag(rootCommand, rest, stdout)
	}
	if showVersion {
		fmt.Fprintf(stdout, "berthd version %s\n", version.Version)
		return nil
	}
	return dispatch(rootCommand, c, rest, stdout)
}

// dispatch runs cmd (its flags already parsed) or the subcommand args name.
func dispatch(cmd *command, c *cliContext, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		if args[0] == "help" || args[0] == "h" {
			return helpCommand(cmd, args[1:], stdout)
		}
		if sub, ok := cmd.subs[args[0]]; ok {
			return runCommand(sub, c, args[1:], stdout)
		}
	}
	if cmd.action == nil {
		// A command with subcommands only (config): its help, or no
		// such topic.
		if len(args) == 0 {
			io.WriteString(stdout, cmd.helpText(false))
			return nil
		}
		return &exitError{code: 3, msg: fmt.Sprintf("No help topic for '%s'", args[0])}
	}
	c.args = args
	return cmd.action(c)
}

// runCommand parses cmd's own flags and runs it.
func runCommand(cmd *command, c *cliContext, args []string, stdout io.Writer) error {
	var help bool
	fs := newFlagSet(cmd.name)
	for _, name := range []string{"help", "h"} {
		fs.BoolVar(&help, name, false, "")
	}
	if cmd.jsonFlag {
		fs.BoolVar(&c.json, "json", false, "")
	}
	if err := parseFlags(fs, args, []aliased{{"help", "h"}}); err != nil {
		fmt.Fprintf(stdout, "Incorrect Usage: %s\n\n%s", err, cmd.helpText(true))
		return err
	}
	if help {
		return helpFlag(cmd, fs.Args(), stdout)
	}
	return dispatch(cmd, c, fs.Args(), stdout)
}

// helpFlag is --help given to cmd: its help, or that of the command named
// after the flag.
func helpFlag(cmd *command, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		io.WriteString(stdout, cmd.helpText(false))
		return nil
	}
	if !cmd.printTopic(stdout, args[0]) {
		return fmt.Errorf("No help topic for '%s'", args[0])
	}
	return nil
}

// helpCommand is "help [NAME]" under parent.
func helpCommand(parent *command, args []string, stdout io.Writer) error {
	var help bool
	fs := newFlagSet("help")
	for _, name := range []string{"help", "h"} {
		fs.BoolVar(&help, name, false, "")
	}
	if err := parseFlags(fs, args, []aliased{{"help", "h"}}); err != nil {
		fmt.Fprintf(stdout, "Incorrect Usage: %s\n\n%s", err, helpHelp(parent, true))
		return err
	}
	rest := fs.Args()
	if help || len(rest) == 0 {
		io.WriteString(stdout, parent.helpText(false))
		return nil
	}
	topic := rest[0]
	if (topic == "help" || topic == "h") && len(rest) > 1 {
		// "help help NAME" asks the help command for a topic; it has none.
		topic = rest[1]
	} else if parent.printTopic(stdout, topic) {
		return nil
	}
	return &exitError{code: 3, msg: fmt.Sprintf("No help topic for '%s'", topic)}
}
