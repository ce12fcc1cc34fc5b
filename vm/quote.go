package vm

import "strings"

// ShellQuote joins args into one line a POSIX shell reads back as the same
// words: words made only of safe characters stay bare, the rest are put in
// single quotes.
func ShellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = quoteWord(a)
	}
	return strings.Join(q, " ")
}

// ShellCommand formats a QEMU command line for reading: the binary, then
// each option with its value on a continuation line of its own.
func ShellCommand(cmd []string) string {
	if len(cmd) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(quoteWord(cmd[0]))
	for i := 1; i < len(cmd); i++ {
		b.WriteString(" \\\n  ")
		b.WriteString(quoteWord(cmd[i]))
		if strings.HasPrefix(cmd[i], "-") && i+1 < len(cmd) && !strings.HasPrefix(cmd[i+1], "-") {
			i++
			b.WriteByte(' ')
			b.WriteString(quoteWord(cmd[i]))
		}
	}
	b.WriteByte('\n')
	return b.String()
}

func quoteWord(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
