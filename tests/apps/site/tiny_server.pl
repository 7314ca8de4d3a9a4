# The sample site's server in its smallest, fastest-starting form (perl-base only; a few ms to
# start where server.py takes tens), for tests that start the app many times. On
# $HOST:$PORT it answers "ok" at /health and index.html (next to this file) anywhere else,
# one connection at a time, closing each. SIGTERM ends it.
use strict;
use warnings;
use IO::Socket::INET;

my ($dir) = $0 =~ m{^(.*)/};
$dir = '.' unless defined $dir;
my $text = "tiny\n";
if (open(my $fh, '<', "$dir/index.html")) {
  local $/;
  $text = <$fh>;
  close $fh;
}
my $server = IO::Socket::INET->new(
  LocalAddr => $ENV{HOST} || '127.0.0.1',
  LocalPort => $ENV{PORT},
  Proto     => 'tcp',
  Listen    => 128,
  ReuseAddr => 1,
) or die "listen on port $ENV{PORT}: $!\n";
print "tiny server on port $ENV{PORT}\n";
$| = 1;
$SIG{PIPE} = 'IGNORE';
while (my $c = $server->accept) {
  my $line = <$c>;
  next unless defined $line;
  while (my $h = <$c>) { last if $h =~ /^\r?\n$/; }
  my ($path) = $line =~ m{^\S+\s+(\S+)};
  $path = '/' unless defined $path;
  $path =~ s/\?.*//;
  my $body = $path eq '/health' ? 'ok' : $text;
  print $c "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " . length($body) .
           "\r\nConnection: close\r\n\r\n" . $body;
  close $c;
}
