#!/bin/bash
# Stand-ins for Pacemaker 2.1.5's crm_attribute, attrd_updater, crm_node, crm_resource, cibadmin,
# crm_mon and crm_ticket, and booth's geostore, for agent tests without a cluster. tests/fake_pacemaker.ts copies this file into
# BIN/<tool> for each tool (the name it is called by picks the tool) and keeps the state beside
# it, in BIN/../state:
#
#   local_node, nodes, partition      this node's name; every node; the members of this partition
#   cib/status/NODE/NAME              transient node attributes (-l reboot, --promotion: master-RSC)
#   cib/nodes/NODE/NAME               permanent node attributes (-l forever)
#   cib/crm_config/SET/NAME           cluster properties (-t crm_config -s SET)
#   attrd/NODE/NAME                   private attributes (attrd_updater -p); an empty file is one
#                                     deleted (attrd still lists it, with value="")
#   cib.xml, crm_mon.xml              what cibadmin -Q and crm_mon --output-as=xml print
#   tickets/TICKET/NAME               a booth ticket's state at this site (crm_ticket): granted,
#                                     and the attributes the other site stored here
#   other_site/TICKET/NAME            what geostore stored at the other site (geostore -s other)
#   calls                             one line per call: the tool and its arguments, tab-separated
#   faults/TOOL.sh                    sourced first, when present (a hung or failing tool)
#
# Only what prm calls is implemented, with the real tools' output and exit codes (checked against
# Pacemaker 2.1.5's sources and captured outside a cluster); anything else fails with exit 64
# (CRM_EX_USAGE), so that a new call to an unmodelled option shows up in a test at once. Values
# are written whole into a new file and renamed, so that concurrent readers never see half a value.

set -u
TOOL=${0##*/}
BIN=${0%/*}
STATE=$BIN/../state
{
  printf '%s' "$TOOL"
  printf '\t%s' "$@"
  printf '\n'
} >>"$STATE/calls"
if [ -f "$STATE/faults/$TOOL.sh" ]; then
  # shellcheck source=/dev/null
  . "$STATE/faults/$TOOL.sh"
fi

usage() {
  echo "$TOOL (fake): $*" >&2
  exit 64
}

# Names become file names: the characters Pacemaker ids and node names use here, nothing else.
check_name() {
  [[ "$1" =~ ^[A-Za-z0-9_.:-]+$ ]] || usage "unsupported name '$1'"
}

# Exit 105 (CRM_EX_NOSUCH) for a node the cluster does not know, as crm_attribute does.
check_node() {
  check_name "$1"
  grep -qx -- "$1" "$STATE/nodes" || {
    echo "$TOOL: Could not map name=$1 to a UUID" >&2
    exit 105
  }
}

write_value() {
  mkdir -p "${1%/*}"
  printf '%s' "$2" >"$1.tmp.$$"
  mv -f "$1.tmp.$$" "$1"
}

crm_attribute() {
  local type="" name="" node="" op=get value="" set="" quiet=0 promotion=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --promotion=*) promotion=${1#--promotion=} ;;
      -n | --name) name=${2-}; shift ;;
      -N | --node) node=${2-}; shift ;;
      -l | --lifetime | -t | --type) type=${2-}; shift ;;
      -s | --set-name) set=${2-}; shift ;;
      -G | --query) op=get ;;
      -q | --quiet) quiet=1 ;;
      -D | --delete) op=delete ;;
      -v | --update) op=set; value=${2-}; shift ;;
      *) usage "unsupported option $1" ;;
    esac
    shift
  done
  if [ -n "$promotion" ]; then
    name=master-$promotion
    type=${type:-status}
  fi
  [ -n "$name" ] || usage "no attribute name"
  check_name "$name"
  # The section, as crm_attribute's set_type() picks it.
  case "$type" in
    reboot | status) type=status ;;
    forever | nodes) type=nodes ;;
    crm_config) ;;
    "") if [ -n "$node" ]; then type=nodes; else type=crm_config; fi ;;
    *) usage "unsupported type $type" ;;
  esac
  local file
  if [ "$type" = crm_config ]; then
    set=${set:-cib-bootstrap-options}
    check_name "$set"
    file=$STATE/cib/crm_config/$set/$name
  else
    node=${node:-$(cat "$STATE/local_node")}
    check_node "$node"
    file=$STATE/cib/$type/$node/$name
  fi
  case "$op" in
    get)
      if [ ! -f "$file" ]; then
        echo "crm_attribute: Error performing operation: No such device or address" >&2
        exit 105
      fi
      if [ "$quiet" = 1 ]; then
        printf '%s\n' "$(cat "$file")"
      else
        printf 'scope=%s  name=%s value=%s\n' "$type" "$name" "$(cat "$file")"
      fi
      ;;
    set) write_value "$file" "$value" ;;
    delete) rm -f "$file" ;;
  esac
}

attrd_updater() {
  local name="" node="" op="" value="" all=0 private=0
  while [ $# -gt 0 ]; do
    case "$1" in
      -n | --name) name=${2-}; shift ;;
      -N | --node) node=${2-}; shift ;;
      -U | --update | -B | --update-both) op=set; value=${2-}; shift ;;
      -D | --delete) op=delete ;;
      -Q | --query) op=query ;;
      -A | --all) all=1 ;;
      -p | --private) private=1 ;;
      *) usage "unsupported option $1" ;;
    esac
    shift
  done
  [ -n "$name" ] || usage "no attribute name"
  [ -n "$op" ] || usage "no command"
  check_name "$name"
  node=${node:-$(cat "$STATE/local_node")}
  check_node "$node"
  local dir=cib/status
  [ "$private" = 1 ] && dir=attrd
  case "$op" in
    set) write_value "$STATE/$dir/$node/$name" "$value" ;;
    delete)
      if [ "$private" = 1 ]; then
        [ -f "$STATE/attrd/$node/$name" ] && write_value "$STATE/attrd/$node/$name" ""
      else
        rm -f "$STATE/cib/status/$node/$name"
      fi
      ;;
    query)
      # attrd answers for private and CIB-backed attributes alike: one line per node.
      local printed=0 n f
      for n in $(if [ "$all" = 1 ]; then cat "$STATE/nodes"; else echo "$node"; fi); do
        for f in "$STATE/attrd/$n/$name" "$STATE/cib/status/$n/$name"; do
          if [ -f "$f" ]; then
            printf 'name="%s" host="%s" value="%s"\n' "$name" "$n" "$(cat "$f")"
            printed=1
            break
          fi
        done
      done
      if [ "$printed" = 0 ]; then
        echo "attrd_updater: Could not query value of $name: attribute does not exist" >&2
        exit 78
      fi
      ;;
  esac
}

crm_node() {
  case "${1-}" in
    -n | --name) cat "$STATE/local_node"; echo ;;
    -p | --partition) tr '\n' ' ' <"$STATE/partition" | sed 's/ $//'; echo ;;
    *) usage "unsupported option ${1-}" ;;
  esac
}

crm_resource() {
  local cleanup=0 rsc="" node=""
  while [ $# -gt 0 ]; do
    case "$1" in
      -C | --cleanup) cleanup=1 ;;
      -r | --resource) rsc=${2-}; shift ;;
      -N | --node) node=${2-}; shift ;;
      *) usage "unsupported option $1" ;;
    esac
    shift
  done
  [ "$cleanup" = 1 ] && [ -n "$rsc" ] && [ -n "$node" ] || usage "only --cleanup -r RSC -N NODE"
  check_node "$node"
  echo "Cleaned up $rsc on $node"
}

# crm_ticket -t T -q prints the ticket's state as Pacemaker 2.1.5 does (a "State XML:" header,
# then one ticket_state element); a ticket never granted here is exit 105. -D deletes an attribute.
crm_ticket() {
  local ticket="" op="" name=""
  while [ $# -gt 0 ]; do
    case "$1" in
      -t | --ticket) ticket=${2-}; shift ;;
      -q | --query-xml) op=query ;;
      -D | --delete-attr) op=delete; name=${2-}; shift ;;
      *) usage "unsupported option $1" ;;
    esac
    shift
  done
  check_name "$ticket"
  local dir=$STATE/tickets/$ticket
  if [ ! -d "$dir" ]; then
    echo "crm_ticket: Could not query ticket XML: No such device or address" >&2
    exit 105
  fi
  case "$op" in
    query)
      local attrs="" f
      for f in "$dir"/*; do
        [ -f "$f" ] && attrs="$attrs ${f##*/}=\"$(cat "$f")\""
      done
      printf 'State XML:\n\n<ticket_state id="%s"%s/>\n' "$ticket" "$attrs"
      ;;
    delete)
      check_name "$name"
      rm -f "$dir/$name"
      ;;
    *) usage "only -q or -D" ;;
  esac
}

# geostore {set|delete} -c CONF -t T -s other NAME [VALUE]: what booth would carry to the other site.
geostore() {
  local op=${1-} ticket="" site="" conf=""
  shift || true
  while [ $# -gt 0 ]; do
    case "$1" in
      -t) ticket=${2-}; shift ;;
      -s) site=${2-}; shift ;;
      -c) conf=${2-}; shift ;;
      -*) usage "unsupported option $1" ;;
      *) break ;;
    esac
    shift
  done
  [ "$site" = other ] && [ -n "$conf" ] || usage "only -c CONF -s other"
  check_name "$ticket"
  check_name "${1-}"
  case "$op" in
    set) write_value "$STATE/other_site/$ticket/$1" "${2-}" ;;
    delete) rm -f "$STATE/other_site/$ticket/$1" ;;
    *) usage "only set or delete" ;;
  esac
}

# cibadmin -Q and crm_mon print the XML a test stored (status.ts's two reads).
print_fixture() {
  [ -f "$STATE/$1" ] || usage "no $1 stored (FakePacemaker.setXml)"
  cat "$STATE/$1"
}

case "$TOOL" in
  crm_attribute) crm_attribute "$@" ;;
  attrd_updater) attrd_updater "$@" ;;
  crm_node) crm_node "$@" ;;
  crm_resource) crm_resource "$@" ;;
  crm_ticket) crm_ticket "$@" ;;
  geostore) geostore "$@" ;;
  cibadmin)
    if [ "$*" = "-Q -o configuration" ]; then
      # The agent's maintenance check: the stored CIB (it holds the section), else an empty one.
      if [ -f "$STATE/cib.xml" ]; then cat "$STATE/cib.xml"
      else echo "<configuration><crm_config/><nodes/><resources/><constraints/></configuration>"
      fi
      exit 0
    fi
    [ "$*" = "-Q" ] || usage "only -Q or -Q -o configuration"
    print_fixture cib.xml
    ;;
  crm_mon)
    [ "$*" = "-1 -A -r --output-as=xml" ] || usage "only -1 -A -r --output-as=xml"
    print_fixture crm_mon.xml
    ;;
  *) usage "unknown tool" ;;
esac
