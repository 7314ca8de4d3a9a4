# busybox httpd on $PORT serving www/ (www/version says which version this is). Each start
# appends its release to /var/lib/app/boots when that is writable (a volume): GET /cgi-bin/boots.
[ -w /var/lib/app ] && echo "${BERTH_RELEASE:-?}" >>/var/lib/app/boots
exec httpd -f -p "${PORT:?PORT is not set}" -h www
