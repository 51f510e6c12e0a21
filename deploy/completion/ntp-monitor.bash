# bash completion for ntp-monitor(8). The Debian package installs it as
# /usr/share/bash-completion/completions/ntp-monitor; by hand: `source` this file.
#
# Completes the sub-commands, each command's options (the same lists `ntp-monitor --help` and
# `ntp-monitor COMMAND --help` print: tests/integration/test_man_page.py compares them), the
# values of options that take one of a few words, and file names where a file is expected
# (nothing for numbers, addresses, host names and URLs).
# Self-contained: it does not need the bash-completion package's helpers.

_ntp_monitor() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()

    # bash splits "--opt=value" at '=' (COMP_WORDBREAKS): complete the value of --opt.
    if [[ $cur == "=" && $prev == --* ]]; then
        cur=""
    elif [[ $prev == "=" ]] && ((COMP_CWORD > 1)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    fi

    local commands="query simulate check-config demo healthcheck check"
    # Options of the daemon (no sub-command) and of each sub-command; the ones that take a
    # value are listed again in *_valued, so that their value is not taken for a command.
    local daemon_opts="--help --version --config --prometheus-port --web-dashboard
        --listen-address --web-config --web.listen-address --web.config.file
        --web.telemetry-path --log-format --log-level --shard --shard-from-hostname
        --shard-count"
    local daemon_valued="--config --prometheus-port --web-dashboard --listen-address
        --web-config --web.listen-address --web.config.file --web.telemetry-path --log-format
        --log-level --shard --shard-count"
    local query_opts="--help --json --samples --interval --timeout --port --ntp-version
        --config --nts --ntske-port --ca-file --ntske-timeout --nts-ntp-server --key-file
        --key-id --key-format"
    local simulate_opts="--help --listen --offset --stratum --refid --leap --precision --poll
        --root-delay --root-dispersion --forward-delay --forward-delay-probability
        --return-delay --return-delay-probability --loss --kiss --spoof-origin --spoof-port
        --duplicate --spoof-shift --seed --max-runtime"
    local check_config_opts="--help --list-alerts"
    local demo_opts="--help --prometheus-port --web-dashboard --duration --die-after
        --log-level"
    local healthcheck_opts="--help --timeout --ca-file"
    local check_opts="--help --hostname --port --warning --critical --swarn --scrit --jwarn
        --jcrit --twarn --tcrit --time-offset --timeout --use-ipv4 --use-ipv6 --quiet --verbose
        --samples --interval --ntp-version --nts --ntske-port --ca-file --key-file --key-id
        --key-format"

    # The sub-command is the first word that is neither an option nor an option's value.
    local command="" i word
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ $word == "=" ]]; then
            ((i++))  # "--opt" "=" "value": skip the value too
            continue
        fi
        if [[ $word == -* ]]; then
            [[ " ${daemon_valued//$'\n'/ } " == *" $word "* && ${COMP_WORDS[i + 1]} != "=" ]] &&
                ((i++))
            continue
        fi
        if [[ " $commands " == *" $word "* ]]; then
            command=$word
            break
        fi
    done

    # Values of the option just typed.
    case $prev in
        --config | --web-config | --web.config.file | --ca-file | --key-file)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return 0
            ;;
        --log-format)
            mapfile -t COMPREPLY < <(compgen -W "logfmt json" -- "$cur")
            return 0
            ;;
        --log-level)
            mapfile -t COMPREPLY < <(compgen -W "debug info warning error" -- "$cur")
            return 0
            ;;
        --ntp-version)
            mapfile -t COMPREPLY < <(compgen -W "3 4" -- "$cur")
            return 0
            ;;
        --key-format)
            mapfile -t COMPREPLY < <(compgen -W "auto chrony ntpsec" -- "$cur")
            return 0
            ;;
        --kiss)
            mapfile -t COMPREPLY < <(compgen -W "RATE DENY RSTR NTSN" -- "$cur")
            return 0
            ;;
        --listen | --prometheus-port | --web-dashboard | --listen-address | --web.listen-address | \
            --web.telemetry-path | --samples | --interval | \
            --timeout | --port | --ntske-port | --ntske-timeout | --nts-ntp-server | --key-id | \
            --offset | --stratum | --refid | --leap | --precision | --poll | --root-delay | \
            --root-dispersion | --forward-delay | --forward-delay-probability | \
            --return-delay | --return-delay-probability | --loss | --spoof-shift | --seed | \
            --max-runtime | --duration | --die-after | --hostname | --warning | --critical | \
            --shard | --shard-count | \
            --swarn | --scrit | --jwarn | --jcrit | --twarn | --tcrit | --time-offset)
            return 0  # a number, an address or a name: nothing to offer
            ;;
    esac

    local opts
    case $command in
        "") opts=$daemon_opts ;;
        query) opts=$query_opts ;;
        simulate) opts=$simulate_opts ;;
        check-config) opts=$check_config_opts ;;
        demo) opts=$demo_opts ;;
        healthcheck) opts=$healthcheck_opts ;;
        check) opts=$check_opts ;;
    esac

    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
        return 0
    fi
    case $command in
        "")
            mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
            ;;
        check-config)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            ;;
    esac
    return 0
}

complete -F _ntp_monitor ntp-monitor
