// nginx njs helpers for FloriSense (njs 0.7+: Debian's libnginx-mod-http-js, and the official
// nginx image). Each request runs in its own njs VM, so module-level state is per request.

var MAX_MESSAGE = 300;
var rewriting = false;
var upstreamBody = '';

// A client-safe message: MLflow's error bodies carry stack traces, server paths and, for
// "Failed to predict data '...'", the whole request echoed back.
function cleanMessage(text) {
    var message = String(text || '').trim();
    try {
        var parsed = JSON.parse(message);
        message = String(parsed.message || parsed.error || message);
    } catch (e) {
        // not JSON: MLflow answers some errors (415) as plain text
    }
    // "Failed to predict data '<the request>'. Error: Failed to enforce ... Error: <the cause>"
    var marker = message.lastIndexOf('Error: ');
    if (message.indexOf('Failed to') === 0 && marker >= 0) {
        message = message.slice(marker + 7);
    }
    message = message.split('\n')[0];
    // MLflow appends a paragraph about its 2.0 protocol change to format errors: not for clients.
    message = message.split(' IMPORTANT: ')[0];
    message = message.replace(/File "[^"]*"/g, 'File');
    message = message.replace(/(\/[\w.@+-]+){2,}\/?/g, '<path>');
    if (message.length > MAX_MESSAGE) {
        message = message.slice(0, MAX_MESSAGE - 3) + '...';
    }
    return message || 'the model server could not process the request';
}

function errorHeaders(r) {
    rewriting = r.status >= 400;
    if (rewriting) {
        delete r.headersOut['Content-Length'];
        r.headersOut['Content-Type'] = 'application/json';
    }
}

function errorBody(r, data, flags) {
    if (!rewriting) {
        r.sendBuffer(data, flags);
        return;
    }
    if (upstreamBody.length < 65536) {
        upstreamBody += data;
    }
    if (flags.last) {
        var body = {error: cleanMessage(upstreamBody), request_id: r.variables.request_id};
        r.sendBuffer(JSON.stringify(body), flags);
    }
}

function reply(r, status, body) {
    body.request_id = r.variables.request_id;
    r.headersOut['Content-Type'] = 'application/json';
    r.headersOut['Cache-Control'] = 'no-store';
    r.return(status, JSON.stringify(body));
}

// GET /healthz: 200 when the model server answers /ping, else 503. JSON either way.
function healthz(r) {
    r.subrequest('/_ping', {method: 'GET'}).then(function (ping) {
        if (ping.status === 200) {
            reply(r, 200, {status: 'ok', model_server: 'up'});
        } else {
            reply(r, 503, {status: 'unhealthy', model_server: 'not answering (' + ping.status + ')'});
        }
    }).catch(function () {
        reply(r, 503, {status: 'unhealthy', model_server: 'not answering'});
    });
}

export default {errorHeaders, errorBody, healthz, cleanMessage};
